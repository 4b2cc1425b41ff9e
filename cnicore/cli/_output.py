"""Where a command writes (results on stdout, human error messages on stderr) and the exit statuses."""

from __future__ import annotations

import sys
from typing import IO, Any, Final

from cnicore._errors import CNIError, error_from_object

EXIT_OK: Final = 0
EXIT_INPUT: Final = 1
EXIT_USAGE: Final = 2
EXIT_SYSTEM: Final = 3


class _Output:
    """Where a command writes: stdout for results, stderr for human error messages."""

    def __init__(self, as_json: bool, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.json = as_json
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def document(self, value: Any) -> None:
        from cnicore._json import marshal_indent

        self.out.write(marshal_indent(value) + "\n")

    def error(self, exc: CNIError) -> None:
        if self.json:
            self.out.write(exc.to_json() + "\n")
        else:
            self.err.write(f"cnicore: {exc}\n")


def _is_input_error(exc: CNIError) -> bool:
    # An error built with only a code (a plugin's error object) falls in the family of that code.
    return exc.is_input_error or (type(exc) is CNIError and error_from_object({"code": exc.code}).is_input_error)


def exit_status(exc: CNIError) -> int:
    """The exit status for an error: :data:`EXIT_INPUT` or :data:`EXIT_SYSTEM`."""
    return EXIT_INPUT if _is_input_error(exc) else EXIT_SYSTEM
