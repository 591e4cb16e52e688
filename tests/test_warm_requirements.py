"""Requirements files and specifiers: pins, ranges, extras, markers, includes, constraints, hashes, oddities."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

import pytest
from packaging.requirements import Requirement

from proxy.warm.requirements import (
    Requested,
    RequirementsError,
    RequirementSet,
    parse_requirement,
    parse_requirements_file,
)

SHA_A = "a" * 64
SHA_B = "b" * 64


def reader(files: dict[str, str]) -> Callable[[str], str]:
    def read(path: str) -> str:
        key = posixpath.normpath(path)
        if key not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[key]

    return read


def parse(text: str, **others: str) -> RequirementSet:
    return parse_requirements_file("reqs.txt", reader({"reqs.txt": text, **others}))


def req(text: str, origin: str, *hashes: str) -> Requested:
    return Requested(Requirement(text), frozenset(hashes), origin)


@pytest.mark.parametrize(("text", "expected"), [
    ("django==5.0.1\n", [req("django==5.0.1", "reqs.txt:1")]),
    ("requests>=2.31,<3\n", [req("requests>=2.31,<3", "reqs.txt:1")]),
    ("requests[socks, security] ~= 2.31\n", [req("requests[socks,security]~=2.31", "reqs.txt:1")]),
    ('pywin32 ; sys_platform == "win32"\n', [req('pywin32; sys_platform == "win32"', "reqs.txt:1")]),
    ("# a comment\n\n  \nattrs  # trailing comment\n", [req("attrs", "reqs.txt:4")]),
    ("attrs#not-a-comment\n", "invalid"),
    ("numpy \\\n  >=1.26 \\\n  ; python_version >= '3.10'\nscipy\n",
     [req("numpy>=1.26; python_version >= '3.10'", "reqs.txt:1"), req("scipy", "reqs.txt:4")]),
    ("last \\", [req("last", "reqs.txt:1")]),
    ("Foo_Bar.baz\n", [req("Foo_Bar.baz", "reqs.txt:1")]),
])
def test_requirement_lines(text: str, expected: list[Requested] | str) -> None:
    """Each requirement line becomes one Requested with its origin; comments and continuations as pip reads them."""
    if isinstance(expected, str):
        with pytest.raises(RequirementsError, match=r"reqs\.txt:1"):
            parse(text)
        return
    assert parse(text) == RequirementSet(requirements=tuple(expected))


@pytest.mark.parametrize("line", [
    f"pkg==1.0 --hash=sha256:{SHA_A} --hash=sha256:{SHA_B}",
    f"pkg==1.0 --hash sha256:{SHA_A.upper()} --hash=sha256:{SHA_B}",
    f"pkg==1.0 \\\n    --hash=sha256:{SHA_A} \\\n    --hash=sha256:{SHA_B}",
])
def test_hashes_are_recorded(line: str) -> None:
    """--hash values (either spelling, any case, across continuation lines) are kept lower-cased."""
    assert parse(line).requirements == (req("pkg==1.0", "reqs.txt:1", f"sha256:{SHA_A}", f"sha256:{SHA_B}"),)


@pytest.mark.parametrize("line", ["pkg --hash=sha256:abc", "pkg --hash=md5:" + "a" * 32, "pkg --hash=" + SHA_A])
def test_bad_hash_is_an_error(line: str) -> None:
    """A --hash that is not a full sha256/384/512 digest stops the run, naming the line."""
    with pytest.raises(RequirementsError, match=r"reqs.txt:1: --hash"):
        parse(line)


def test_includes_are_relative_to_the_including_file() -> None:
    """-r/--requirement paths resolve against the including file's directory, at any depth."""
    files = {
        "env/prod.txt": "-r base/common.txt\n--requirement=../extra.txt\ngunicorn\n",
        "env/base/common.txt": "-r more.txt\nflask\n",
        "env/base/more.txt": "click\n",
        "extra.txt": "rich\n",
    }
    result = parse_requirements_file("env/prod.txt", reader(files))
    assert [str(r.requirement) for r in result.requirements] == ["click", "flask", "rich", "gunicorn"]
    assert [r.origin for r in result.requirements] == [
        "env/base/more.txt:1", "env/base/common.txt:2", "env/../extra.txt:1", "env/prod.txt:3"]


def test_include_cycle_is_an_error() -> None:
    """A file that includes itself, directly or not, is refused with the chain."""
    files = {"a.txt": "-r sub/b.txt\n", "sub/b.txt": "-r ../a.txt\n"}
    with pytest.raises(RequirementsError, match=r"cycle: a.txt -> sub/b.txt -> a.txt"):
        parse_requirements_file("a.txt", reader(files))


def test_the_same_file_twice_is_not_a_cycle() -> None:
    """Including one file from two places is fine: only an include of an ancestor is a cycle."""
    files = {"a.txt": "-r c.txt\n-r b.txt\n", "b.txt": "-r c.txt\n", "c.txt": "six\n"}
    assert len(parse_requirements_file("a.txt", reader(files)).requirements) == 2


def test_missing_include_names_the_including_file() -> None:
    """An unreadable include says which file included it."""
    with pytest.raises(RequirementsError, match=r"nope.txt: cannot read requirements file \(included from reqs.txt\)"):
        parse("-r nope.txt\n")


def test_constraints_are_separate_and_nested_files_stay_constraints() -> None:
    """-c lines (and everything their file includes) are constraints, not requirements."""
    result = parse("-c cons.txt\nflask\n", **{"cons.txt": "werkzeug<3\n-r more.txt\n", "more.txt": "click==8.1\n"})
    assert result.requirements == (req("flask", "reqs.txt:2"),)
    assert result.constraints == (req("werkzeug<3", "cons.txt:1"), req("click==8.1", "more.txt:1"))


def test_index_options_are_ignored_with_a_warning() -> None:
    """--index-url and friends point pip elsewhere; warm reads shadowpi, and says it ignored them."""
    text = "-i https://a/simple\n--extra-index-url https://b/simple\n-f ./wheels\n--no-binary :all:\n--pre\nx\n"
    result = parse(text)
    assert result.requirements == (req("x", "reqs.txt:6"),)
    assert result.prereleases is True
    assert result.warnings == (
        "reqs.txt:1: ignored -i (warm always reads shadowpi's index)",
        "reqs.txt:2: ignored --extra-index-url (warm always reads shadowpi's index)",
        "reqs.txt:3: ignored -f (warm always reads shadowpi's index)",
        "reqs.txt:4: ignored option --no-binary",
    )


@pytest.mark.parametrize(("line", "message"), [
    ("-e .", "reqs.txt:1: -e . (editable installs are built locally, not fetched)"),
    ("--editable=git+https://example.invalid/x.git#egg=x", "reqs.txt:1: -e git+https://example.invalid/x.git#egg=x"),
    ("./vendor/pkg-1.0-py3-none-any.whl", "reqs.txt:1: ./vendor/pkg-1.0-py3-none-any.whl (a URL or path"),
    ("https://example.invalid/pkg-1.0.tar.gz", "reqs.txt:1: https://example.invalid/pkg-1.0.tar.gz (a URL or path"),
    ("pkg @ https://example.invalid/pkg-1.0.tar.gz", "reqs.txt:1: pkg @ https://example.invalid/pkg-1.0.tar.gz"),
])
def test_editables_urls_and_paths_are_reported_unsupported(line: str, message: str) -> None:
    """What warm cannot fetch by name is listed as unsupported, never silently dropped."""
    result = parse(line + "\nok\n")
    assert result.requirements == (req("ok", "reqs.txt:2"),)
    assert len(result.unsupported) == 1
    assert result.unsupported[0].startswith(message)


def test_unknown_per_requirement_options_warn() -> None:
    """Build options after a requirement are ignored with a warning; the requirement stays."""
    result = parse("pkg --config-settings=a=b\n")
    assert result.requirements == (req("pkg", "reqs.txt:1"),)
    assert result.warnings == ("reqs.txt:1: ignored per-requirement option(s) --config-settings",)


@pytest.mark.parametrize(("text", "message"), [
    ("not a requirement!", "command line: invalid requirement"),
    ("pkg @ https://example.invalid/p.whl", "direct URL reference"),
])
def test_parse_requirement_errors(text: str, message: str) -> None:
    """A command-line specifier must be a PEP 508 requirement by name."""
    with pytest.raises(RequirementsError, match=message):
        parse_requirement(text)


def test_sets_add_up() -> None:
    """Specifiers and files combine into one set, keeping order and the --pre flag."""
    total = RequirementSet((parse_requirement("a"),)) + parse("--pre\nb\n")
    assert [str(r.requirement) for r in total.requirements] == ["a", "b"]
    assert total.prereleases is True
