"""The shadow policy as a table: which names may reach upstream, and how pages merge."""

from __future__ import annotations

import pytest

from proxy.simple.model import DistFile, Origin, ProjectPage
from proxy.simple.names import NormalizedName
from proxy.simple.policy import ShadowPolicy, merge_versions, resolve_project, upstream_allowed

ACME = NormalizedName("acme-internal")


@pytest.mark.parametrize(
    ("has_private", "policy", "allowed"),
    [
        (False, ShadowPolicy(), True),
        (True, ShadowPolicy(), False),
        (True, ShadowPolicy(merge_upstream=frozenset({ACME})), True),
        (False, ShadowPolicy(private_patterns=("acme-*",)), False),
        (False, ShadowPolicy(private_patterns=("Acme_*",)), False),
        (False, ShadowPolicy(private_patterns=("acme.internal",)), False),
        (False, ShadowPolicy(private_patterns=("other-*",)), True),
        (False, ShadowPolicy(merge_upstream=frozenset({ACME}), private_patterns=("acme-*",)), True),
        (True, ShadowPolicy(merge_upstream=frozenset({NormalizedName("other")})), False),
    ],
)
def test_upstream_allowed(has_private: bool, policy: ShadowPolicy, allowed: bool):
    """A private project or a reserved name hides upstream unless merge_upstream names it explicitly."""
    assert upstream_allowed(ACME, has_private=has_private, policy=policy) is allowed


def _page(origin: Origin, *filenames: str, versions: tuple[str, ...] = ()) -> ProjectPage:
    files = tuple(DistFile(f, f"https://up/{f}" if origin is Origin.UPSTREAM else "", origin=origin) for f in filenames)
    return ProjectPage(ACME, files, versions, origin)


PRIVATE = _page(Origin.PRIVATE, "acme_internal-1.0-py3-none-any.whl", versions=("1.0",))
UPSTREAM = _page(
    Origin.UPSTREAM, "acme_internal-1.0-py3-none-any.whl", "acme_internal-99.0-py3-none-any.whl",
    versions=("1.0", "99.0"),
)


@pytest.mark.parametrize(
    ("private", "upstream", "expected"),
    [
        (None, None, None),
        (PRIVATE, None, PRIVATE),
        (None, UPSTREAM, UPSTREAM),
        (
            PRIVATE,
            UPSTREAM,
            ProjectPage(ACME, (*PRIVATE.files, UPSTREAM.files[1]), ("1.0", "99.0"), Origin.PRIVATE),
        ),
    ],
)
def test_resolve_project(private: ProjectPage | None, upstream: ProjectPage | None, expected: ProjectPage | None):
    """Merging keeps every private file, adds upstream files with other names, and unions versions."""
    assert resolve_project(private, upstream) == expected


def test_private_file_wins_a_filename_clash():
    """On a filename clash the private file (and its hash) is the one listed."""
    merged = resolve_project(PRIVATE, UPSTREAM)
    assert merged is not None
    clash = merged.file("acme_internal-1.0-py3-none-any.whl")
    assert clash is not None
    assert clash.origin is Origin.PRIVATE


def test_merge_versions_orders_by_pep440():
    """Versions merge in PEP 440 order, not string order; unparseable ones go last."""
    assert merge_versions(["1.10", "1.2"], ["1.9", "1.2", "weird"]) == ("1.2", "1.9", "1.10", "weird")
