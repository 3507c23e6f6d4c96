"""engine/memo.GenerationMemo: built once per key and owner; a new owner starts over."""

from __future__ import annotations

from engine.memo import GenerationMemo


def test_builds_once_per_key_while_the_owner_stays() -> None:
    memo: GenerationMemo[str, list[str]] = GenerationMemo()
    owner = object()
    built: list[str] = []

    def build(key: str) -> list[str]:
        built.append(key)
        return [key]

    first = memo.get(owner, "a", lambda: build("a"))
    assert memo.get(owner, "a", lambda: build("a")) is first
    memo.get(owner, "b", lambda: build("b"))
    assert built == ["a", "b"]


def test_a_new_owner_drops_what_the_old_one_built() -> None:
    memo: GenerationMemo[str, object] = GenerationMemo()
    old, new = object(), object()
    was = memo.get(old, "k", object)
    assert memo.get(new, "k", object) is not was
    # identity, not equality: an equal but distinct owner is a new generation
    a, b = [1], [1]
    assert memo.get(a, "k", object) is not memo.get(b, "k", object)


def test_the_limit_starts_the_generation_over() -> None:
    memo: GenerationMemo[int, int] = GenerationMemo(limit=2)
    owner = object()
    calls: list[int] = []
    for key in (1, 2, 3, 1):
        memo.get(owner, key, lambda key=key: calls.append(key) or key)  # type: ignore[misc]
    assert calls == [1, 2, 3, 1]  # the third key cleared 1 and 2

