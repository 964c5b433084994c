"""Delivery authentication, including GitHub's published test vector."""

from __future__ import annotations

import pytest

from mergeway.intake.signatures import sign_github, verify_github, verify_gitlab

GITHUB_VECTOR_SECRET = "It's a Secret to Everybody"
GITHUB_VECTOR_BODY = b"Hello, World!"
GITHUB_VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_published_test_vector() -> None:
    assert sign_github(GITHUB_VECTOR_SECRET, GITHUB_VECTOR_BODY) == GITHUB_VECTOR_SIGNATURE
    assert verify_github(GITHUB_VECTOR_SECRET, GITHUB_VECTOR_BODY, GITHUB_VECTOR_SIGNATURE)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59",  # the legacy header's value is not accepted
        GITHUB_VECTOR_SIGNATURE[:-1] + "0",
        GITHUB_VECTOR_SIGNATURE.replace("sha256=", "sha512="),
        "sha256=ü" + "0" * 63,
        "sha256=\u2603",
    ],
)
def test_github_rejects_wrong_or_missing_signatures(header: str | None) -> None:
    assert not verify_github(GITHUB_VECTOR_SECRET, GITHUB_VECTOR_BODY, header)


def test_github_signature_covers_exact_bytes() -> None:
    assert not verify_github(GITHUB_VECTOR_SECRET, GITHUB_VECTOR_BODY + b"\n", GITHUB_VECTOR_SIGNATURE)
    assert not verify_github("another secret", GITHUB_VECTOR_BODY, GITHUB_VECTOR_SIGNATURE)


def test_github_without_a_secret_accepts_nothing() -> None:
    assert not verify_github("", b"{}", sign_github("", b"{}"))


def test_gitlab_token() -> None:
    assert verify_gitlab("s3cret-token", "s3cret-token")
    assert not verify_gitlab("s3cret-token", "s3cret-tokeN")
    assert not verify_gitlab("s3cret-token", "")
    assert not verify_gitlab("s3cret-token", None)
    assert not verify_gitlab("", "")
    assert not verify_gitlab("s3cret-token", "s3cret-token\u2603")


def test_gitlab_non_ascii_secret_as_a_wsgi_server_decodes_it() -> None:
    # WSGI hands header bytes over as latin-1 text; the UTF-8 secret must still match.
    received = "café-token".encode().decode("latin-1")
    assert verify_gitlab("café-token", received)
