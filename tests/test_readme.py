"""The README's shell examples work as written after its two install commands.

Every `travelrisk` invocation in a shell block must name an existing command and existing options (checked
against the CLI's own command tree), be written so that it runs in a new shell where the virtual
environment is not on the PATH, and the examples that need no server are run.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from service.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# A `travelrisk` invocation inside a shell line: the program (with its directory, if any) at the start of a
# word or of a `$(...)`, then its arguments up to the end of the command.
INVOCATION = re.compile(r"(?:^|[\s(])(?P<prefix>(?:[\w.]+/)*)travelrisk(?=\s|$)(?P<args>[^|&;)#\n]*)")
# Lines of a container's shell, where the image puts `travelrisk` on the PATH.
IN_CONTAINER = re.compile(r"docker (compose )?(exec|run)\b")


def shell_blocks(text: str) -> list[str]:
    """Indented code blocks and fenced sh/bash/shell/console blocks, each with continuation lines joined."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"```(\w*)", line)
        if fence:
            end = i + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            if fence.group(1) in ("sh", "bash", "shell", "console", ""):
                blocks.append("\n".join(lines[i + 1 : end]))
            i = end + 1
            continue
        if line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            end = i
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            blocks.append("\n".join(x[4:] for x in lines[i:end]).strip("\n"))
            i = end
            continue
        i += 1
    return [block.replace("\\\n", " ") for block in blocks]


def invocations() -> list[tuple[str, str, str]]:
    """(line, prefix, arguments) of every `travelrisk` command in the README's shell blocks."""
    found = []
    for block in shell_blocks(README.read_text(encoding="utf-8")):
        # Single-quoted text (JSON bodies, URLs) holds no command.
        for line in re.sub(r"'[^']*'", "''", block).splitlines():
            for match in INVOCATION.finditer(line):
                found.append((line, match.group("prefix"), match.group("args")))
    return found


def check_arguments(args: str) -> list[str]:
    """Problems with `travelrisk ARGS` (placeholders like `FILE` and `[--opt VALUE]` allowed)."""
    command = typer.main.get_command(app)
    tokens = shlex.split(args.replace("[", " ").replace("]", " "))
    problems = []
    path = ["travelrisk"]
    for token in tokens:
        if isinstance(command, typer.core.TyperGroup) and not token.startswith("-"):
            sub = command.get_command(typer.Context(command), token)
            if sub is None:
                problems.append(f"{' '.join(path)} has no command {token!r}")
                break
            command, path = sub, [*path, token]
            continue
        if token.startswith("--"):
            name = token.split("=", 1)[0]
            options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
            if name not in options and name != "--help":
                problems.append(f"{' '.join(path)} has no option {name}")
    if isinstance(command, typer.core.TyperGroup):
        problems.append(f"{' '.join(path)} is a group, not a command")
    return problems


def test_the_readme_has_travelrisk_examples() -> None:
    commands = {shlex.split(args.replace("[", " "))[0] for _, _, args in invocations() if args.strip()}
    assert {"serve", "keys", "db", "data", "model", "assess"} <= commands


@pytest.mark.parametrize(("line", "prefix", "args"), invocations(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_readme_invocation_names_existing_commands_and_options(line: str, prefix: str, args: str) -> None:
    assert not check_arguments(args), f"{line}: {check_arguments(args)}"


@pytest.mark.parametrize(("line", "prefix", "args"), invocations(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_readme_invocation_runs_without_the_venv_on_the_path(line: str, prefix: str, args: str) -> None:
    if IN_CONTAINER.search(line):
        return  # inside the image, where `travelrisk` is installed on the PATH
    assert prefix.endswith(".venv/bin/"), f"`{line}` fails with 'command not found' in a new shell"


def test_the_checker_catches_a_wrong_command_or_option() -> None:
    assert check_arguments(" keys create --tenant acme --role admin") == []
    assert check_arguments(" keys make --tenant acme")
    assert check_arguments(" serve --threads 2")
    assert check_arguments(" model")


def test_the_readme_assess_example_runs_as_written() -> None:
    blocks = [b for b in shell_blocks(README.read_text(encoding="utf-8")) if "travelrisk assess -" in b]
    assert blocks, "the README shows `travelrisk assess -`"
    # The README's `.venv` is this run's virtual environment, wherever it is.
    script = blocks[0].replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["status"] == "scored" and body["factors"]
