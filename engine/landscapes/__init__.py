"""Analytic 2D landscapes: built-ins and whitelisted user expressions (docs/science.md § 8)."""
from .base import Bounds, Landscape
from .builtins import BUILTINS
from .expression import ExpressionError, compile_expression, parse

__all__ = ["BUILTINS", "Bounds", "ExpressionError", "Landscape", "compile_expression", "parse"]
