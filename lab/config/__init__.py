"""Configuration loading: positioned YAML -> checked frozen dataclasses, plus JSON Schema.

Typical use by a domain loader::

    node = read_yaml(path)                       # LabError on malformed/hostile YAML
    policy, where = build(node, Policy, str(path))   # LabError listing every mistake
    ...cross-checks... raise LabError([diag_at(str(path), where, ("rules", 0), "...", code="unknown-name")])

Modules: yamlio (positioned, hardened YAML), declare (fields and shapes), build (the checker),
sourcemap (positions of built values), messages (the words of diagnostics), jsonschema.
Every diagnostic carries a code from lab.errors.CODES and the YAML path of its field.
"""

from lab.config.build import build, to_data
from lab.config.declare import Expr, FieldMeta, option, yaml_name
from lab.config.jsonschema import json_schema
from lab.config.sourcemap import SourceMap, diag_at
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
