"""run_tool: the one way the firewalls run iptables and nft (posix_spawn and poll, no subprocess module)."""

from __future__ import annotations

import pytest

from cnicore._errors import InternalError, NamespaceNotFoundError, NotFoundError
from cnicore.backends._kernel import run_tool


def test_output_exit_status_and_stdin_are_carried() -> None:
    done = run_tool(["sh", "-c", "cat; echo oops >&2; exit 3"], namespace_path=None, nsenter="", timeout=10,
                    stdin="line one\r\nline two\n")
    assert (done.returncode, done.stdout, done.stderr) == (3, "line one\nline two\n", "oops\n")


def test_large_input_and_output_do_not_deadlock() -> None:
    # More than a pipe holds both ways: the tool writes while we still write to it.
    data = "x" * 1_000_000 + "\n"
    done = run_tool(["cat"], namespace_path=None, nsenter="", timeout=30, stdin=data)
    assert done.returncode == 0 and done.stdout == data


def test_no_stdin_reads_end_of_file() -> None:
    done = run_tool(["cat"], namespace_path=None, nsenter="", timeout=10)
    assert (done.returncode, done.stdout) == (0, "")


def test_a_tool_that_does_not_finish_is_killed() -> None:
    with pytest.raises(InternalError, match=r"did not finish in 0\.2s"):
        run_tool(["sleep", "30"], namespace_path=None, nsenter="", timeout=0.2)


def test_a_missing_tool_and_a_missing_namespace_are_errors() -> None:
    with pytest.raises(NotFoundError, match="cannot run /nonexistent/iptables"):
        run_tool(["/nonexistent/iptables"], namespace_path=None, nsenter="", timeout=10)
    with pytest.raises(NamespaceNotFoundError):
        run_tool(["true"], namespace_path="/var/run/netns/cnt-bx-missing", nsenter="nsenter", timeout=10)


def test_a_signal_is_a_negative_status() -> None:
    done = run_tool(["sh", "-c", "kill -9 $$"], namespace_path=None, nsenter="", timeout=10)
    assert done.returncode == -9
