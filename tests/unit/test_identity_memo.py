"""The identity memo: one answer per very same input, a fresh one for an equal copy."""

from __future__ import annotations

from warden.domain.identity_memo import by_identity


def test_the_same_object_is_answered_once_and_an_equal_copy_again() -> None:
    asked: list[tuple[int, ...]] = []

    @by_identity()
    def total(values: tuple[int, ...]) -> int:
        asked.append(values)
        return sum(values)

    first = (1, 2, 3)
    copy = tuple(list(first))
    assert copy == first and copy is not first
    assert total(first) == 6
    assert total(first) == 6
    assert total(copy) == 6
    assert len(asked) == 2
    assert asked[0] is first and asked[1] is copy


def test_memory_starts_afresh_at_its_size() -> None:
    asked: list[object] = []

    @by_identity(maxsize=2)
    def name(value: object) -> str:
        asked.append(value)
        return type(value).__name__

    kept = [object() for _ in range(3)]
    for value in kept:
        name(value)
    name(kept[0])  # forgotten when the third arrived
    name(kept[2])  # remembered since
    assert asked == [kept[0], kept[1], kept[2], kept[0]]


def test_keyword_arguments_are_not_remembered() -> None:
    asked: list[int] = []

    @by_identity()
    def double(value: int) -> int:
        asked.append(value)
        return 2 * value

    assert double(value=4) == 8
    assert double(value=4) == 8
    assert asked == [4, 4]


def test_an_input_gone_and_a_new_one_in_its_place_is_asked_afresh() -> None:
    # Each input is kept alive while remembered: a later object never takes its id and
    # with it the answer of another.
    class Box:
        def __init__(self, value: int) -> None:
            self.value = value

    @by_identity(maxsize=8)
    def unbox(box: Box) -> int:
        return box.value

    assert [unbox(Box(i)) for i in range(50)] == list(range(50))
