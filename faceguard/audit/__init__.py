"""Audit: does a cloak survive purification, and could a platform detect it?"""
