"""numpy arrays of every kind in forms that numpy 1.x and 2.x both rebuild.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only (numpy is
imported only where an array is already at hand).

The codec sends a plain ``ndarray`` (or numpy scalar) whose dtype holds no objects as raw bytes:
dtype + shape + buffer. Every other array takes one of the forms below, a list whose parts the
codec encodes as values of their own (so an object array's elements may be references):

* ``["items", dtype, shape, elements, is_scalar]``: object arrays and numpy 2 ``StringDType``
  arrays, element by element (a numpy 1 receiver gets ``StringDType`` as an object array of str);
* ``["fields", dtype, shape, field arrays, is_scalar]``: structured arrays with object fields;
* ``["masked", data, mask or None, fill value, hard mask]``: ``numpy.ma.MaskedArray``;
  ``["masked_constant"]`` is ``numpy.ma.masked``;
* ``["sub", class spec or None, base ndarray, instance dict or None]``: an ndarray subclass the
  receiver has by name (``recarray``, ``matrix``, a library's own), rebuilt as a view of the base
  with the instance's attributes; ``None`` (``memmap``) gives the values as a plain ndarray.

An array that fits none of them (a subclass the receiver lacks, or one with pickling of its own;
a dtype with no portable description) is not this module's: the codec pickles it where both sides
may, else sends a reference. No form drops what makes the array what it is (a mask, a subclass,
a field) without saying so.
"""

from __future__ import annotations

from typing import Any, Callable

from . import names

# Methods with which a subclass carries state of its own through pickling: such an array is
# not rebuilt as a view of its base (its pickle, or a reference, keeps that state).
_PICKLING = ("__reduce__", "__reduce_ex__", "__getstate__", "__setstate__")

_WIRES: dict[Any, Any] = {}  # simple dtype -> its wire string, or False when it has none


def _numpy() -> Any:
    numpy = names.loaded_numpy()
    if numpy is None:
        import numpy
    return numpy


def dtype_wire(dtype: Any) -> Any:
    """A description of ``dtype`` that numpy 1.x and 2.x both rebuild exactly, or None."""
    if dtype.fields is None and dtype.subdtype is None:
        try:
            wire = _WIRES[dtype]
        except (KeyError, TypeError):
            wire = _simple_wire(dtype)
            try:
                _WIRES[dtype] = False if wire is None else wire
            except TypeError:
                pass
        return wire or None
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        inner = dtype_wire(base)
        return None if inner is None else ["sub", inner, list(shape)]
    np = _numpy()
    fields = [dtype.fields[name] for name in dtype.names]
    formats = [dtype_wire(field[0]) for field in fields]
    if any(f is None for f in formats):
        return None
    titles = [field[2] if len(field) > 2 else None for field in fields]
    return [
        "struct",
        list(dtype.names),
        formats,
        [field[1] for field in fields],
        dtype.itemsize,
        bool(dtype.isalignedstruct),
        titles if any(t is not None for t in titles) else None,
        dtype.type is np.record,
    ]


def _simple_wire(dtype: Any) -> str | None:
    if dtype.kind == "T":  # numpy 2 StringDType: its str is no dtype string
        return "T" if getattr(dtype, "na_object", _MISSING) is _MISSING else None
    try:
        same = _numpy().dtype(dtype.str) == dtype
    except Exception:
        same = False
    return dtype.str if same else None  # e.g. a user dtype whose str says only "|V2"


_MISSING = object()


def dtype_from_wire(wire: Any) -> Any:
    """The dtype ``dtype_wire`` described.

    Raises:
        TypeError: this numpy has no such dtype.
    """
    np = _numpy()
    if isinstance(wire, str):
        return np.dtype(wire)
    if wire[0] == "sub":
        return np.dtype((dtype_from_wire(wire[1]), tuple(wire[2])))
    _, field_names, formats, offsets, itemsize, aligned, titles, is_record = wire
    spec = {
        "names": field_names,
        "formats": [dtype_from_wire(f) for f in formats],
        "offsets": offsets,
        "itemsize": itemsize,
    }
    if titles is not None:
        spec["titles"] = titles
    dtype = np.dtype(spec, align=aligned)
    return np.dtype((np.record, dtype)) if is_record else dtype


def is_raw(obj: Any) -> bool:
    """True for what travels as raw bytes: a plain ndarray or scalar without objects."""
    np = _numpy()
    cls = type(obj)
    return (cls is np.ndarray or isinstance(obj, np.generic)) and not obj.dtype.hasobject


def form_of(obj: Any, peer_has_name: Callable[[list[Any]], bool]) -> list[Any] | None:
    """The form (see the module docstring) of an array that is not raw, or None."""
    np = _numpy()
    is_scalar = isinstance(obj, np.generic)
    if is_scalar or type(obj) is np.ndarray:
        arr = np.asarray(obj) if is_scalar else obj
        wire = dtype_wire(arr.dtype)
        if wire is None:
            return None
        if arr.dtype.fields is not None:
            parts = [arr[name] for name in arr.dtype.names]
            return ["fields", wire, list(arr.shape), parts, is_scalar]
        return ["items", wire, list(arr.shape), arr.reshape(-1).tolist(), is_scalar]
    if obj is np.ma.masked:
        return ["masked_constant"]
    if type(obj) is np.ma.MaskedArray:
        mask = obj._mask
        return [
            "masked",
            obj.data,
            None if mask is np.ma.nomask else mask,
            obj.fill_value,
            bool(obj.hardmask),
        ]
    if isinstance(obj, np.memmap):  # the file stays here: its values go
        return ["sub", None, obj.view(np.ndarray), None]
    if isinstance(obj, np.ma.MaskedArray):
        return None
    for klass in type(obj).__mro__:
        if klass is np.ndarray:
            break
        if any(name in vars(klass) for name in _PICKLING) or vars(klass).get("__slots__"):
            return None
    spec = names.name_of(type(obj))
    if spec is None or not peer_has_name(spec):
        return None
    state = getattr(obj, "__dict__", None)
    return ["sub", spec, obj.view(np.ndarray), dict(state) if state else None]


def from_form(form: list[Any]) -> Any:
    """The array a form describes.

    Raises:
        TypeError, LookupError, ValueError: this side cannot rebuild it.
    """
    np = _numpy()
    kind = form[0]
    if kind == "items":
        _, wire, shape, elements, is_scalar = form
        try:
            dtype = dtype_from_wire(wire)
        except TypeError:
            if wire != "T":
                raise
            dtype = np.dtype(object)  # StringDType into numpy 1: its str elements
        arr = np.empty(len(elements), dtype=dtype)
        for i, element in enumerate(elements):  # one by one: a sequence is one element
            arr[i] = element
        arr = arr.reshape(shape)
        return arr[()] if is_scalar else arr
    if kind == "fields":
        _, wire, shape, parts, is_scalar = form
        dtype = dtype_from_wire(wire)
        arr = np.empty(shape, dtype=dtype)
        for name, part in zip(dtype.names, parts):
            arr[name] = part
        return arr[()] if is_scalar else arr
    if kind == "masked":
        _, data, mask, fill_value, hard_mask = form
        return np.ma.MaskedArray(
            data,
            mask=np.ma.nomask if mask is None else mask,
            fill_value=fill_value,
            hard_mask=hard_mask,
        )
    if kind == "masked_constant":
        return np.ma.masked
    if kind == "sub":
        _, spec, base, state = form
        if spec is None:
            return base
        cls = names.resolve(spec)
        if not (isinstance(cls, type) and issubclass(cls, np.ndarray)):
            raise TypeError("%s.%s is not an ndarray subclass here" % (spec[1], spec[2]))
        arr = base.view(cls)
        if state:
            arr.__dict__.update(state)
        return arr
    raise ValueError("unknown array form %r" % (kind,))
