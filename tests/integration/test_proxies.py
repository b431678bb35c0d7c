"""Remote objects behave like local ones: attributes, operators, protocols."""

from __future__ import annotations

import inspect

import pytest


@pytest.fixture
def counter(demo):
    return demo.make_counter(3)


def test_remote_class_can_be_instantiated(demo):
    created = demo.Counter(5)
    assert created.value == 5
    assert repr(created) == "Counter(5)"


def test_attribute_get_set_delete(counter):
    assert counter.value == 3
    counter.value = 10
    assert counter.value == 10
    counter.extra = "x"
    assert counter.extra == "x"
    del counter.extra
    with pytest.raises(AttributeError):
        counter.extra  # noqa: B018


def test_method_call(counter):
    assert counter.increment() == 4
    assert counter.increment(by=6) == 10


def test_repr_str_format(counter):
    assert repr(counter) == "Counter(3)"
    assert str(counter) == "counter at 3"
    assert f"{counter:>4}" == "   3"


def test_len_bool_and_no_hash_that_could_disagree(demo, counter):
    assert len(counter) == 3
    assert bool(counter) is True
    assert bool(demo.make_counter(0)) is False
    # Counter hashes by value in the worker: a hash made there could disagree with equal values
    # here (str hashes differ between interpreters), so the proxy refuses to hash (issue 16).
    with pytest.raises(TypeError, match=r"mvb_demo\.Counter.*mvbridge\.by_value"):
        hash(counter)


def test_iteration_indexing_and_membership(counter):
    assert list(counter) == [0, 1, 2]
    assert counter[1] == 1
    assert counter[-1] == 2
    assert 2 in counter
    assert 5 not in counter
    counter[0] = "a"
    del counter[1]
    assert counter.events == [("set", 0, "a"), ("del", 1)]


def test_operators_plain_reflected_and_in_place(counter):
    total = counter + 2
    assert total.value == 5
    assert (10 + counter).value == 13
    assert (-counter).value == -3
    assert counter < 4
    assert counter == 3
    assert counter != 4
    same = counter
    counter += 7
    assert counter is same  # __iadd__ returned the same remote object: the same proxy
    assert counter.value == 10


def test_context_manager(counter):
    with counter as entered:
        assert entered is counter
    with pytest.raises(KeyError), counter:
        raise KeyError("inside")
    assert counter.events == ["enter", ("exit", None), "enter", ("exit", "KeyError")]


def test_dir_doc_and_method_signature(counter):
    assert "increment" in dir(counter)
    assert counter.__doc__ == "Counts things."
    assert counter.increment.__doc__ == "Add ``by`` and return the new value."
    assert str(inspect.signature(counter.increment)) == "(by=1)"


def test_callable_is_true_only_for_callables(demo, counter):
    assert callable(demo.Counter)
    assert callable(counter.increment)
    assert not callable(counter)


def test_remote_generator_is_iterated_in_batches(demo):
    assert list(demo.generate(10_000)) == list(range(10_000))
    assert sum(demo.generate(0)) == 0


def test_generator_error_after_items_keeps_the_items(demo):
    seen = []

    def consume():
        for item in demo.generate_then_fail(5):
            seen.append(item)

    with pytest.raises(KeyError, match="after 5"):
        consume()
    assert seen == [0, 1, 2, 3, 4]


def test_next_on_a_remote_iterator(demo):
    gen = demo.generate(2)
    assert next(gen) == 0
    assert next(gen) == 1
    with pytest.raises(StopIteration):
        next(gen)


def test_proxy_cannot_be_pickled(counter):
    import pickle

    import mvbridge

    with pytest.raises(mvbridge.SerializationError, match="proxy"):
        pickle.dumps(counter)
