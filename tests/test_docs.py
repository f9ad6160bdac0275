"""The docs the code cites exist: every `(docs: "Page")` and `(docs: "Page: Section")` in stages/, pipeline/ and
hw02.py names a page of the site's navigation and a heading on it (docs: "Contributing: Citing the docs"), the
generated pages included; and no code cites the README's sections, which moved to the docs."""

import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from pipeline.reference import generated_pages

CITED = [REPO / "hw02.py", *sorted((REPO / "stages").glob("*.py")), *sorted((REPO / "pipeline").glob("*.py"))]
CITATION = re.compile(r'docs: "([^"\n]+)"')
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def nav_pages(nav) -> dict[str, str]:
    """{title: file} of every page in mkdocs.yml's nav, sections flattened."""
    pages = {}
    for entry in nav:
        for title, target in entry.items():
            pages |= nav_pages(target) if isinstance(target, list) else {title: target}
    return pages


def headings(markdown: str) -> set[str]:
    """The text of each Markdown heading outside fenced code, without its inline marks (` and *)."""
    found, fence = set(), None
    for line in markdown.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            fence = None if fence == stripped[:3] else fence or stripped[:3]
            continue
        match = HEADING.match(line) if fence is None else None
        if match:
            found.add(re.sub(r"[`*]", "", match.group(2)).strip())
    return found


@pytest.fixture(scope="module")
def site() -> dict[str, set[str]]:
    """{page title: its headings} for every page the docs site has."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    generated = generated_pages()
    return {
        title: headings(generated[path] if path in generated else (REPO / "docs" / path).read_text(encoding="utf-8"))
        for title, path in nav_pages(config["nav"]).items()
    }


def citations() -> list[tuple[str, int, str]]:
    """(file, line, citation) of every docs citation in the code the docs describe."""
    return [
        (path.relative_to(REPO).as_posix(), number, cited)
        for path in CITED
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for cited in CITATION.findall(line)
    ]


def test_the_code_cites_the_docs_often():
    assert len(citations()) >= 30


def test_every_citation_names_a_page_and_a_heading_that_exist(site):
    broken = []
    for file, number, cited in citations():
        page, _, section = cited.partition(": ")
        if page not in site:
            broken.append(f'{file}:{number}: (docs: "{cited}"): no page {page!r} in mkdocs.yml nav ({", ".join(site)})')
        elif section and section not in site[page]:
            broken.append(f'{file}:{number}: (docs: "{cited}"): no heading {section!r} on {page!r}')
    assert not broken, "\n".join(broken)


def test_every_citation_is_written_the_one_way():
    """`docs:` is always followed by a quoted page, and README sections are not cited: they moved to the docs."""
    loose = re.compile(r'docs:(?! ")|README[,:]?\s*\(?"|\(README[,:)]|in the README \(|see the README')
    wrong = [
        f"{path.relative_to(REPO).as_posix()}:{number}: {line.strip()}"
        for path in CITED
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if loose.search(line)
    ]
    assert not wrong, "\n".join(wrong)


def test_a_citation_of_a_missing_heading_is_caught(site):
    assert "aggregate" in site["How it works"]
    assert "Acting on the results" not in site["How it works"]  # a README heading that never existed


def test_nav_titles_leave_the_colon_to_the_section():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    assert not [title for title in nav_pages(config["nav"]) if ": " in title]


def test_generated_pages_are_made_from_the_code_and_not_committed():
    pages = generated_pages()
    assert "## twins run" in pages["reference/cli.md"] and "--pred-probs" in pages["reference/cli.md"]
    assert "## hw02.py" in pages["reference/cli.md"] and "--time-budget" in pages["reference/cli.md"]
    assert "| `min_posterior` |" in pages["reference/parameters.md"]
    for path in pages:
        assert not (REPO / "docs" / path).exists(), f"docs/{path} is generated at build time: do not commit it"


@pytest.mark.slow
def test_the_site_builds_strictly_offline(tmp_path):
    pytest.importorskip("mkdocstrings")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "cli.html").exists()
