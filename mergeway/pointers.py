"""JSON pointers (RFC 6901) at fields of Kubernetes objects, and which of them may be left alone.

A leaf: ``.mergeway.yaml``'s ``ignore:`` (validated where the web process and the policy may read
it, without the engine) and the engine's :class:`~mergeway.kube.options.IgnoreRule` both parse
pointers here, so a rule the configuration accepts is one the engine accepts.
"""

from __future__ import annotations

#: What identifies an object: a rule may never remove these (the request would go to another object).
PROTECTED = {("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("metadata", "namespace")}


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of a JSON pointer (RFC 6901).

    ``/metadata/annotations/a~1b`` → ``("metadata", "annotations", "a/b")``.
    """
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON pointer (it must start with '/')")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/"))


def ignorable(pointer: str) -> tuple[str, ...]:
    """The tokens of ``pointer``; ``ValueError`` when it is not a pointer or names what identifies an object."""
    tokens = parse_pointer(pointer)
    if tokens == ("",) or tokens in PROTECTED:
        raise ValueError(f"{pointer!r} names what identifies an object, which cannot be ignored")
    return tokens
