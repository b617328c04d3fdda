"""Event routing: the EventBridge pattern language and the matcher that holds a bus's rules."""

from squall.engine.router.matcher import Matcher
from squall.engine.router.patterns import Pattern, compile_pattern, validate_pattern

__all__ = ["Matcher", "Pattern", "compile_pattern", "validate_pattern"]
