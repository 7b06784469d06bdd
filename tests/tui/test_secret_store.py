"""The keyring policy: name the backend, refuse plaintext unless opted in, fall back to session memory."""

from __future__ import annotations

import threading

import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null

from asa_wizard.adapters.secrets import KeyringSecretStore, describe_backend
from asa_wizard.core.ports import SecretStore
from asa_wizard.core.secrets import Secret


class MemoryBackend:
    """A keyring backend that works (as Secret Service would), in memory."""

    name = "Test keyring"

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service, key):
        return self.data.get((service, key))

    def set_password(self, service, key, value):
        self.data[(service, key)] = value

    def delete_password(self, service, key):
        self.data.pop((service, key), None)


class PlaintextKeyring(MemoryBackend):
    """Like keyrings.alt's file backend: a file-backed store with keyring's not-recommended priority."""

    name = "keyrings.alt.file.PlaintextKeyring"
    priority = 0.5
    file_path = "/tmp/keyring_pass.cfg"


class LockedBackend(MemoryBackend):
    """A locked Secret Service collection: every call blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service, key):
        self.release.wait(10)
        return None

    set_password = get_password  # type: ignore[assignment]


def test_a_working_keyring_stores_and_is_named():
    backend = MemoryBackend()
    store = KeyringSecretStore(backend=backend)
    assert isinstance(store, SecretStore)
    assert store.available and store.backend_name == "Test keyring"
    store.set("dc1:admin", Secret("pw-1"))
    assert backend.data[("asa-wizard", "dc1:admin")] == "pw-1"
    fresh = KeyringSecretStore(backend=backend)  # a later session reads it back
    assert fresh.get("dc1:admin").reveal() == "pw-1"
    fresh.delete("dc1:admin")
    assert ("asa-wizard", "dc1:admin") not in backend.data


def test_the_fail_backend_keeps_secrets_in_memory_for_the_session():
    store = KeyringSecretStore(backend=keyring.backends.fail.Keyring())
    assert not store.available
    assert "memory" in store.where
    store.set("k", Secret("pw-2"))
    assert store.get("k").reveal() == "pw-2"
    assert KeyringSecretStore(backend=keyring.backends.fail.Keyring()).get("k") is None


def test_the_null_backend_is_not_used():
    store = KeyringSecretStore(backend=keyring.backends.null.Keyring())
    assert not store.available
    assert store.persist_refused_reason()


def test_a_plaintext_backend_is_refused_unless_opted_in():
    backend = PlaintextKeyring()
    store = KeyringSecretStore(backend=backend)
    assert store.is_plaintext and not store.available
    store.set("k", Secret("pw-3"))
    assert backend.data == {}  # never written to the plain file
    assert store.get("k").reveal() == "pw-3"
    assert "plain" in store.persist_refused_reason()

    opted_in = KeyringSecretStore(backend=backend, allow_plaintext=True)
    assert opted_in.available
    opted_in.set("k", Secret("pw-3"))
    assert backend.data[("asa-wizard", "k")] == "pw-3"


def test_a_locked_keyring_times_out_and_falls_back_to_memory():
    backend = LockedBackend()
    store = KeyringSecretStore(backend=backend, timeout=0.2)
    try:
        assert store.get("k") is None
        assert not store.available and "failed" in store.last_problem
        store.set("k", Secret("pw-4"))  # not asked again: straight to memory
        assert store.get("k").reveal() == "pw-4"
    finally:
        backend.release.set()
        store.close()


def test_plain_text_is_refused():
    store = KeyringSecretStore(backend=MemoryBackend())
    try:
        store.set("k", "plain")  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        raise AssertionError("a plain string was accepted")


class QuietFile(MemoryBackend):
    """A plaintext file backend under an innocent name: it keeps a file_path and keyring rates it below 1."""

    name = "Corporate vault"
    priority = 0.5
    file_path = "/home/u/.local/share/python_keyring/keyring_pass.cfg"


class Chainer(keyring.backends.chainer.ChainerBackend):
    members: list = []

    @property
    def backends(self):  # type: ignore[override]
        return self.members


def test_a_plaintext_backend_under_another_name_is_refused():
    backend = QuietFile()
    store = KeyringSecretStore(backend=backend)
    assert store.is_plaintext and not store.available
    store.set("k", Secret("pw-9"))
    assert backend.data == {} and store.get("k").reveal() == "pw-9"  # kept in memory only


def test_a_chainer_is_judged_by_every_backend_it_writes_to():
    chain = Chainer()
    chain.members = [MemoryBackend(), QuietFile()]
    name, plaintext, usable = describe_backend(chain)
    assert plaintext and usable and "Corporate vault" in name
    chain.members = [MemoryBackend()]
    assert describe_backend(chain)[1:] == (False, True)
    chain.members = []
    assert describe_backend(chain)[2] is False
    assert describe_backend(keyring.backends.fail.Keyring())[2] is False
