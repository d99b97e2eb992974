"""How the test suite is launched must not change what it checks: a pytest started with SIGINT and SIGTERM
ignored (``nohup python -m pytest tests &`` from a script: a non-interactive shell's background job
ignores SIGINT, and an ignored signal stays ignored across exec) still runs the tests that interrupt a
training run with a signal, and they pass (tests/conftest.py's default_signal_handlers sets the handlers they need)."""
import os
import signal
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The SIGINT parametrisation of the signal test (the only test that sends SIGINT); with SIGTERM ignored
# too, its check that the SIGTERM handler is back to the default covers that signal's disposition.
SIGNAL_TEST = "tests/integration/test_resume.py::test_a_signal_saves_a_checkpoint_and_resuming_gives_the_same_bits"
SIGNAL_TEST_CASE = "pfs2c2"


def ignore_interruptions():
    """In the child, before exec: SIGINT and SIGTERM ignored, as a background job launched by a script
    gets them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def launched_with_interruptions_ignored(*argv):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, preexec_fn=ignore_interruptions,
                          capture_output=True, text=True, timeout=600)


def test_a_child_launched_so_starts_with_sigint_and_sigterm_ignored():
    """The launch condition is reproduced (else the next test would pass for nothing)."""
    child = launched_with_interruptions_ignored(
        "-c", "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "
              "signal.getsignal(signal.SIGTERM) is signal.SIG_IGN)")
    assert child.stdout.split() == ["True", "True"]


def test_the_signal_tests_pass_when_pytest_is_launched_with_sigint_ignored(tmp_path):
    child = launched_with_interruptions_ignored(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'basetemp'}", SIGNAL_TEST,
        "-k", SIGNAL_TEST_CASE)
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    assert "1 passed" in child.stdout
