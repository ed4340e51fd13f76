import hookwise


def test_all_is_sorted_and_complete() -> None:
    assert hookwise.__all__ == sorted(hookwise.__all__)
    for name in hookwise.__all__:
        assert hasattr(hookwise, name), name
    public = {n for n in dir(hookwise) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(hookwise.__all__)


def test_errors_split_caller_fault_from_ours() -> None:
    assert issubclass(hookwise.VerificationError, hookwise.RequestError)
    assert hookwise.VerificationError("missing_header").status == 401
    assert hookwise.PayloadTooLarge("too_big").status == 413
    assert hookwise.UnknownSource("x").status == 404
    assert issubclass(hookwise.StoreUnavailable, hookwise.StoreError)
    assert not issubclass(hookwise.StoreError, hookwise.RequestError)
    assert hookwise.StoreOverloaded().retry_after > 0


def test_retry_takes_after_or_at() -> None:
    from datetime import UTC, datetime, timedelta

    import pytest

    assert hookwise.Retry(after=timedelta(minutes=1)).after == 60
    assert hookwise.Retry(at=datetime(2030, 1, 1, tzinfo=UTC)).at is not None
    with pytest.raises(TypeError):
        hookwise.Retry(after=1, at=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        hookwise.Retry(after=-1)
