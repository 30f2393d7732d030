"""Collect → validate → enrich: what POST /events does with a body before a sink stores it.

Imports only the top-level modules (config, sinks, terminal) and, for the rejects it keeps,
the reject record's format (``rejects.record``): never csv, erase, athena, dev or a CLI, so
the route's cold start loads nothing downstream.
"""
