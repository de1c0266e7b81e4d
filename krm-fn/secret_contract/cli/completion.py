"""`secret-contract completion bash|zsh|fish`: a shell's completion script, generated from the
parser that `parser.build()` makes, so every verb, option and choice is offered as the command
line accepts it. bash and zsh come from shtab (the `completion` extra); shtab has no fish
output, so fish's `complete` lines are written here from the same parser.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from secret_contract.cli.output import EXIT_OK
from secret_contract.errors import InvalidInput

if TYPE_CHECKING:
    from secret_contract.cli.context import Context

SHELLS = ("bash", "zsh", "fish")


def cmd_completion(args: argparse.Namespace, ctx: Context) -> int:
    """Print the completion script for SHELL on stdout: every verb, option and choice, from the
    parser itself. bash and zsh need shtab (pip install 'secret-contract[completion]')."""
    from secret_contract.cli import parser

    ctx.stdout.write(script(args.shell, parser.build()))
    return EXIT_OK


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    if shell == "fish":
        return fish(parser)
    try:
        import shtab
    except ImportError:
        raise InvalidInput(f"{shell} completion needs shtab: pip install 'secret-contract[completion]'") from None
    return str(shtab.complete(parser, shell=shell))


def fish(parser: argparse.ArgumentParser) -> str:
    prog = parser.prog
    lines = [f"# fish completion for {prog}, generated from its parser", f"complete -c {prog} -f"]
    lines += [_fish_option(prog, "__fish_use_subcommand", action) for action in _options(parser)]
    for name, summary, sub in _verbs(parser):
        lines.append(f"complete -c {prog} -n __fish_use_subcommand -a {name} -d {_quote(summary)}")
        seen = f"'__fish_seen_subcommand_from {name}'"
        for positional in _positionals(sub):
            if positional.choices:
                lines.append(f"complete -c {prog} -n {seen} -x -a {_quote(' '.join(map(str, positional.choices)))}")
            else:
                lines.append(f"complete -c {prog} -n {seen} -F")  # PATH, DIR: files and directories
        lines += [_fish_option(prog, seen, action) for action in _options(sub)]
    return "\n".join(lines) + "\n"


# argparse keeps a parser's actions and its subcommands' summaries only in these private
# attributes (shtab reads the same ones).
def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not a.option_strings and a.help != argparse.SUPPRESS]


def _verbs(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    return [(name, summaries.get(name, ""), each) for name, each in sub.choices.items()]


def _fish_option(prog: str, condition: str, action: argparse.Action) -> str:
    parts = [f"complete -c {prog} -n {condition}"]
    for flag in action.option_strings:
        parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
    if action.choices:
        parts.append(f"-x -a {_quote(' '.join(map(str, action.choices)))}")
    elif action.nargs != 0:
        parts.append("-r -F")  # takes a value: offer files (a path, a URL typed by hand)
    parts.append(f"-d {_quote((action.help or '').replace('%%', '%'))}")
    return " ".join(parts)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
