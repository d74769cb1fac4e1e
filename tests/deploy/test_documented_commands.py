"""The commands the operations guide and the charts' README tell a platform engineer to type run as
written: every shell block parses (bash -n); every helm and kubectl command uses flags its tool
has; and every `helm install`/`upgrade` of this repository's charts renders with exactly the
documented values and --set keys (`helm template`, the charts' schemas checking each key), so a
renamed value or a stale flag in the docs fails here instead of on someone's cluster."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import DeployKit

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "operations.md", ROOT / "deploy" / "helm" / "README.md", ROOT / "README.md"]
# Placeholders the guide uses for what only the reader knows.
PLACEHOLDERS = {"<new>": "0.1.0", "<current>": "0.1.0", "<revision>": "1"}
# Values files the guide names as the reader's own: a copy of the repository's example, or (None)
# a file of their own for one service chart, rendered here with the chart's defaults.
VALUES_FILES: dict[str, Path | None] = {
    "values-production.yaml": ROOT / "deploy/helm/crm/values-production.yaml",
    "leads-values.yaml": None,
}
# kubectl's flags for every command (`kubectl options`), given before or after the subcommand.
KUBECTL_GLOBAL = ("-n", "--namespace", "--context", "--kubeconfig")
# Flags of install/upgrade that change how Helm talks to a cluster, not what it renders.
CLUSTER_ONLY = {"--wait", "--atomic", "--create-namespace", "--install", "--reset-then-reuse-values"}
CLUSTER_ONLY_WITH_VALUE = {"--timeout"}


def shell_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in DOCS:
        for index, match in enumerate(re.finditer(r"```(?:sh|bash|shell)\n(.*?)```", doc.read_text(), re.S)):
            blocks.append((f"{doc.relative_to(ROOT)}#{index}", match.group(1)))
    return blocks


BLOCKS = shell_blocks()


def filled(block: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        block = block.replace(placeholder, value)
    return block


def commands(block: str) -> list[list[str]]:
    """The block's helm and kubectl commands, continuation lines joined, comments dropped, the
    words after `--` (the command a `kubectl run` starts) left out."""
    joined = re.sub(r"\\\n\s*", " ", filled(block))
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line.startswith(("helm ", "kubectl ")):
            continue
        words = shlex.split(line, comments=True)
        for end in ("|", "--"):
            words = words[: words.index(end)] if end in words else words
        found.append(words)
    return found


def test_the_docs_have_commands_to_check() -> None:
    helm = [c for _, b in BLOCKS for c in commands(b) if c[0] == "helm" and c[1] in ("install", "upgrade")]
    assert len(BLOCKS) >= 10 and len(helm) >= 5


@pytest.mark.parametrize(("where", "block"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_every_shell_block_parses(where: str, block: str) -> None:
    result = subprocess.run(["bash", "-n"], input=filled(block), capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{where}: {result.stderr}"


def subcommand(words: list[str]) -> list[str]:
    """The tool and its subcommand words, up to the first flag or argument that is not one."""
    known = {
        "helm": {"install", "upgrade", "template", "history", "rollback", "repo", "add", "dependency", "build"},
        "kubectl": {"run", "apply", "create", "secret", "generic", "get", "scale", "rollout", "status", "wait"},
    }[words[0]]
    out = [words[0]]
    rest = words[1:]
    while rest[:1] and rest[0] in KUBECTL_GLOBAL:  # kubectl -n crm scale …
        rest = rest[2:]
    for word in rest:
        if word.startswith("-") or word not in known:
            break
        out.append(word)
    return out


@pytest.mark.parametrize(("where", "block"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_every_flag_exists(kit: DeployKit, where: str, block: str) -> None:
    for words in commands(block):
        tool = kit.tool(words[0])
        help_text = kit.run(tool, *subcommand(words)[1:], "--help").stdout
        if words[0] == "kubectl":
            help_text += kit.run(tool, "options").stdout
        flags = {w.split("=", 1)[0] for w in words if re.fullmatch(r"--?[a-z][\w-]*(=.*)?", w)}
        missing = [f for f in flags if not re.search(rf"(^|[\s,]){re.escape(f)}[\s=,]", help_text, re.M)]
        assert not missing, f"{where}: {' '.join(words[:3])}… has no {missing}"


def render_arguments(words: list[str]) -> list[str] | None:
    """`helm install|upgrade <release> <chart> …` as `helm template` arguments: the documented
    values and --set keys, without what only matters to a cluster. None: not one of our charts."""
    args = [w for w in words[2:]]
    release_and_chart = [w for w in args if not w.startswith("-")][:2]
    if len(release_and_chart) < 2 or not release_and_chart[1].startswith("deploy/helm/"):
        return None
    out: list[str] = []
    rest = iter(args)
    for word in rest:
        if word in CLUSTER_ONLY:
            continue
        if word in CLUSTER_ONLY_WITH_VALUE:
            next(rest)
            continue
        if word in ("-f", "--values"):
            name = next(rest)
            values = VALUES_FILES[name] if name in VALUES_FILES else ROOT / name
            if values is not None:
                assert values.exists(), f"the documented values file {name} is not in the repository"
                out += ["-f", str(values)]
            continue
        if word in ("-n", "--namespace", "--set", "--set-string"):
            out += [word, next(rest)]
            continue
        out.append(str(ROOT / word) if word.startswith("deploy/helm/") else word)
    return out


HELM_RELEASES = [
    (where, words)
    for where, block in BLOCKS
    for words in commands(block)
    if words[0] == "helm" and len(words) > 1 and words[1] in ("install", "upgrade")
]


@pytest.mark.parametrize(("where", "words"), HELM_RELEASES, ids=[f"{w}:{' '.join(c[:4])}" for w, c in HELM_RELEASES])
def test_every_documented_release_renders(kit: DeployKit, charts: Path, where: str, words: list[str]) -> None:
    args = render_arguments(words)
    if args is None:
        pytest.skip(f"{words[2:4]}: not a chart of this repository")
    result = kit.run(kit.tool("helm"), "template", *args, check=False)
    assert result.returncode == 0, f"{where}: {' '.join(words)}\n{result.stderr[-2000:]}"
