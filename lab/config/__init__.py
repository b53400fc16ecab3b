"""Configuration loading: positioned YAML -> checked frozen dataclasses, plus JSON Schema.

Typical use by a domain loader::

    node = read_yaml(path)                       # LabError on malformed/hostile YAML
    policy, where = build(node, Policy, str(path))   # LabError listing every mistake
    ...cross-checks... raise LabError([diag_at(str(path), where, ("rules", 0), "...")])
"""

from lab.config.build import Expr, FieldMeta, SourceMap, build, diag_at, option, to_data, yaml_name
from lab.config.jsonschema import json_schema
from lab.config.yamlio import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, Node, parse_yaml, read_yaml

__all__ = [
    "Expr",
    "FieldMeta",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Node",
    "SourceMap",
    "build",
    "diag_at",
    "json_schema",
    "option",
    "parse_yaml",
    "read_yaml",
    "to_data",
    "yaml_name",
]
