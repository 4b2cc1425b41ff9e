"""The error tree: codes, the CNI error object, and parsing a plugin's error output."""

from __future__ import annotations

import pytest

import cnicore
from cnicore import (
    CNIError,
    DecodingError,
    InternalError,
    InvalidConfigError,
    InvalidInputError,
    SystemFailure,
    TryAgainLaterError,
    error_from_object,
)


def test_error_object_is_printed_like_the_reference() -> None:
    err = InvalidConfigError("some message", "some details")
    assert str(err) == "some message; some details"
    assert err.to_json() == '{\n    "code": 7,\n    "msg": "some message",\n    "details": "some details"\n}'
    assert InternalError("potato").to_json() == '{\n    "code": 999,\n    "msg": "potato"\n}'
    assert str(InternalError("some message")) == "some message"


def test_key_path_and_value_become_details() -> None:
    err = InvalidConfigError("Network 10.0.0.0/31 too small to allocate from", key="ipam.subnet",
                             value="10.0.0.0/31")
    assert err.key == "ipam.subnet" and err.value == "10.0.0.0/31"
    assert err.details == 'key ipam.subnet = "10.0.0.0/31"'


def test_whose_fault_and_builtin_bases() -> None:
    assert InvalidConfigError("x").is_input_error
    assert not TryAgainLaterError("x").is_input_error
    assert isinstance(DecodingError("x"), ValueError)
    assert isinstance(cnicore.NotFoundError("x"), LookupError)
    assert isinstance(cnicore.PermissionDeniedError("x"), PermissionError)
    assert issubclass(TryAgainLaterError, SystemFailure)
    assert issubclass(InvalidConfigError, InvalidInputError)


@pytest.mark.parametrize(("code", "cls"), [(1, cnicore.IncompatibleVersionError), (4, cnicore.InvalidEnvironmentError),
                                           (7, InvalidConfigError), (11, TryAgainLaterError),
                                           (50, cnicore.PluginNotAvailableError), (999, InternalError),
                                           (1234, InternalError)])
def test_error_from_object_picks_the_class_and_keeps_the_code(code: int, cls: type[CNIError]) -> None:
    err = error_from_object({"code": code, "msg": "m", "details": "d"})
    assert type(err) is cls
    assert (err.code, err.msg, err.details) == (code, "m", "d")


@pytest.mark.parametrize("obj", [{"msg": "m"}, {"code": "7"}, {"code": True}, {"code": -1},
                                 {"code": 7, "msg": 5}, {"code": 7, "details": []}])
def test_malformed_error_objects_are_decoding_errors(obj: dict[str, object]) -> None:
    with pytest.raises(DecodingError):
        error_from_object(obj)
