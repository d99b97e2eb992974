"""docs/options.md is the argument parser's options, as reproduce.options_reference generates them."""
import os

from conftest import ROOT

from reproduce import options_reference


def test_committed_options_page_is_the_generated_one():
    with open(os.path.join(ROOT, "docs", "options.md"), encoding="utf-8", newline="") as f:
        committed = f.read()
    assert committed == options_reference.render(), (
        "docs/options.md differs from the options of config.build_parser(); regenerate it from the "
        f"repository folder: {options_reference.COMMAND}")
