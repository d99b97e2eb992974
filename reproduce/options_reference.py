"""The options reference, docs/options.md, generated from the argument parser so that it cannot drift.

One Markdown table per argument group of ``config.build_parser()`` (option, default, meaning), taken from
the parser's actions: each help string with ``%(default)s`` and the other argparse fields expanded and its
whitespace normalised. When a help string states its default itself ("... (default: X)" or "...; default:
X"), that statement fills the default column and leaves the help; otherwise the default column shows the
action's default. The training schedules' table comes from ``config.SCHEDULES``.

    python -m reproduce.options_reference > docs/options.md

tests/test_options_reference.py checks that the committed page equals this output.
"""
import argparse
import sys

import config

PROG = "train_all_special.py"
COMMAND = "python -m reproduce.options_reference > docs/options.md"

INTRO = (
    "The original UDALN option names and defaults are kept; the rest are this project's. Default paths are "
    "the repository's folders, so the script runs from any current folder (opt.txt shows them as absolute "
    "paths); a relative path you give is taken from the current folder. A bad value is refused before "
    "anything runs, with a one-line message that names the option and the fix."
)


def _expand(action):
    """The action's help with argparse's %-fields expanded, as ``argparse.HelpFormatter`` expands them."""
    params = dict(vars(action), prog=PROG)
    for name in list(params):
        if params[name] is argparse.SUPPRESS:
            del params[name]
        elif hasattr(params[name], "__name__"):
            params[name] = params[name].__name__
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    return " ".join((action.help or "").split()) % params


def _closing_paren(text, start):
    """Index of the ')' closing the group that is open at ``start``, or None."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            if depth == 0:
                return i
            depth -= 1
    return None


def _opening_paren(text, end):
    """Index of the '(' of the group that is open at ``end``, or None (at the top level)."""
    depth = 0
    for i in range(end - 1, -1, -1):
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            if depth == 0:
                return i
            depth -= 1
    return None


def split_default(text):
    """(help without its default statement, the default it states) for a help that states "default: X";
    (text, None) otherwise. The statement runs to the end of its parenthesis, or of the text at the top level."""
    at = text.find("default:")
    if at < 0:
        return text, None
    value_start = at + len("default:")
    opening = _opening_paren(text, at)
    if opening is None:
        value, rest = text[value_start:], ""
        head = text[:at]
    else:
        closing = _closing_paren(text, value_start)
        if closing is None:
            return text, None
        value, rest = text[value_start:closing], text[closing:]
        head = text[:at]
        if head[opening + 1:].strip() == "":  # "(default: X)": drop the whole parenthesis
            head, rest = text[:opening], text[closing + 1:]
    head = head.rstrip().rstrip(";,").rstrip()
    return (head + rest).strip(), value.strip()


def _value(value):
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{value!r}`"


def _cell(text):
    """Markdown table cell: '|' and '<' escaped, so no cell splits and no text reads as an HTML tag."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<")


def _option(action):
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{names}`"
    if action.metavar is not None:
        return f"`{names} {action.metavar}`"
    if action.choices is not None:
        return f"`{names} {{{','.join(str(c) for c in action.choices)}}}`"
    return f"`{names}`"


def option_row(action):
    """(option, default, meaning) of one parser action, as Markdown."""
    meaning, stated = split_default(_expand(action))
    if stated is not None:
        default = _cell(stated)
    elif action.nargs == 0 and action.default is False:
        default = "off"
    elif action.default is None:
        default = "none"
    else:
        default = _value(action.default)
    return _option(action), default, _cell(meaning)


def schedules_table():
    """The methods' default schedules, one row per distinct schedule, from config.SCHEDULES."""
    rows = {}
    for method in config.METHODS:
        key = tuple(sorted(config.SCHEDULES[method].items()))
        rows.setdefault(key, []).append(method)
    stages = sorted(config.SCHEDULES[config.METHODS[0]])
    lines = ["| method | " + " | ".join(f"stage {s}" for s in stages) + " |",
             "|---|" + "---|" * len(stages)]
    for key, methods in rows.items():
        schedule = dict(key)
        cells = [", ".join(config.short_number(v) for v in schedule[s]) if s in schedule else "-" for s in stages]
        lines.append("| " + ", ".join(f"`{m}`" for m in methods) + " | " + " | ".join(cells) + " |")
    return lines


def render(parser=None):
    """docs/options.md as a string (ending with a newline)."""
    parser = parser or config.build_parser()
    out = ["# Options", "",
           f"<!-- Generated from config.build_parser() by reproduce/options_reference.py: do not edit by hand. "
           f"Regenerate: {COMMAND} -->", "",
           f"Every option of `python {PROG}`, generated from its argument parser (`config.build_parser`), so "
           f"this page and `python {PROG} -h` say the same. After changing an option, regenerate it: "
           f"`{COMMAND}`.", ""]
    if parser.description:
        out += [" ".join(parser.description.split()), ""]
    out += [INTRO, ""]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions
                   if a.help is not argparse.SUPPRESS and a.default is not argparse.SUPPRESS]
        if not actions:
            continue
        out += [f"## {group.title}", ""]
        if group.description:
            out += [" ".join(group.description.split()), ""]
        out += ["| option | default | meaning |", "|---|---|---|"]
        out += ["| " + " | ".join(option_row(a)) + " |" for a in actions]
        out.append("")
    out += ["## Training schedules", "",
            "Schedules (learning rate, epochs, decay begins) per stage, the defaults of `--lr_stageN`, "
            "`--epoch_stageN`, `--decay_begin_epoch_stageN` (learning rates must be > 0, epochs >= 1):", ""]
    out += schedules_table()
    return "\n".join(out) + "\n"


def main():
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
