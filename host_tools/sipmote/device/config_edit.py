"""Edit the device's JSON config (phone.config's format) with secrets never shown.

Keys are dotted paths ("wifi.ssid", "sip.port"). A value is read as JSON when it parses as
JSON (5060, true, ["PCMU"]) and as a plain string otherwise; where the schema wants a string,
a value that parsed as something else ("sip.user 1234") is taken as the string it was typed
as. Every edit is checked with phone.config.validate, the same code the board runs, so a
config the phone would refuse is never written. A secret (phone.config.is_secret, or any key
named like a password) is shown as "***" when set and "" when empty, whatever is printed.
"""

import copy
import importlib.util
import json
import os

from ..firmware import MODULES
from . import DeviceError

_SECRET_WORDS = ("password", "secret", "token", "key")


def phone_config():
    """modules/phone/config.py, loaded on its own (None if this checkout has no device code)."""
    path = os.path.join(MODULES, "phone", "config.py")
    if not os.path.isfile(path):
        return None
    spec = importlib.util.spec_from_file_location("sipmote_device_phone_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_schema = None


def _config_module():
    global _schema
    if _schema is None:
        _schema = phone_config() or False
    return _schema or None


def is_secret(key):
    mod = _config_module()
    if mod is not None and mod.is_secret(key):
        return True
    last = key.rsplit(".", 1)[-1].lower()
    return any(w in last for w in _SECRET_WORDS)


def _split(key):
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise DeviceError("bad key %r: use dotted names like wifi.ssid or sip.port" % key)
    return parts


def get_key(data, key):
    node = data
    for part in _split(key):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def set_key(data, key, value):
    """A copy of `data` with `key` set to `value` (sections created as needed)."""
    out = copy.deepcopy(data)
    parts = _split(key)
    node = out
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise DeviceError("%s is not a section" % part)
        node = child
    node[parts[-1]] = value
    return out


def unset_key(data, key):
    out = copy.deepcopy(data)
    parts = _split(key)
    node = out
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise KeyError(key)
    if parts[-1] not in node:
        raise KeyError(key)
    del node[parts[-1]]
    return out


def parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def validate(data):
    """phone.config.validate(data) (defaults filled in), or data unchecked without it."""
    mod = _config_module()
    if mod is None:
        return data
    try:
        return mod.validate(data)
    except mod.ConfigError as e:
        raise DeviceError(str(e)) from None  # its messages never carry secret values


def set_value(data, key, text):
    """Set `key` from the typed `text`; returns the new config, validated."""
    value = parse_value(text)
    new = set_key(data, key, value)
    try:
        validate(new)
        return new
    except DeviceError:
        if isinstance(value, str):
            raise
    as_text = set_key(data, key, text)  # "sip.user 1234": the schema wants the string
    validate(as_text)
    return as_text


def mask(data, prefix=""):
    """A copy with every secret value replaced: "***" if set, "" if empty."""
    if not isinstance(data, dict):
        return data
    out = {}
    for k, v in data.items():
        key = prefix + k
        if isinstance(v, dict):
            out[k] = mask(v, key + ".")
        elif is_secret(key):
            out[k] = "***" if v else ""
        else:
            out[k] = v
    return out


def show_value(key, value):
    if is_secret(key):
        return "***" if value else '""'
    return json.dumps(value)


def dumps(data):
    """The config as the board stores it: JSON, keys in a stable order."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def loads(text, where="config"):
    try:
        data = json.loads(text)
    except ValueError as e:
        raise DeviceError("%s is not valid JSON (%s)" % (where, e.msg)) from None
    if not isinstance(data, dict):
        raise DeviceError("%s must be a JSON object" % where)
    return data


def template(board):
    """firmware/config.template.json with the board filled in."""
    from ..firmware import FIRMWARE

    with open(os.path.join(FIRMWARE, "config.template.json")) as f:
        data = loads(f.read(), "config.template.json")
    data["board"] = board
    validate(data)
    return data
