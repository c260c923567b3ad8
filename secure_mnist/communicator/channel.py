"""An encrypted, authenticated channel between two parties, on top of any transport that moves bytes.

Two parties who hold the same join secret (the *token*) agree on fresh keys with X25519 and prove
to each other that they know the token; a party without it is refused before anything of value is
sent. Afterwards every message is sealed with AES-256-GCM under a key for its direction (alice to
bob and bob to alice differ) and a counter as its nonce; the associated data names the sender, the
receiver and the counter. A message that was modified, replayed, dropped or delivered out of order
fails the tag check, and the error names the peer.

Nothing here touches the network: `KeyAgreement` turns bytes received into keys, `SealedChannel`
turns tensors into ciphertext and back. `communicator.distributed` moves the bytes over TCP links (`communicator.links`).
"""

from __future__ import annotations

import hmac
import secrets
import struct
import time
from dataclasses import dataclass, field
from hashlib import sha256

import torch
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import SecureMNISTError

CIPHER = "AES-256-GCM"
TAG_BYTES = 16
PUBLIC_KEY_BYTES = 32
CONFIRMATION_BYTES = 32
MIN_TOKEN_CHARS = 16
PROTOCOL = b"secure_mnist channel v1"


class ChannelError(SecureMNISTError, RuntimeError):
    """A message between parties failed its integrity check, or the channel could not be set up."""


class AuthenticationError(ChannelError):
    """A party could not prove that it holds the join token: it is refused."""


# -- the join token ------------------------------------------------------------------------------
def new_token() -> str:
    """A fresh random join token: 32 random bytes, URL-safe text (43 characters)."""
    return secrets.token_urlsafe(32)


def token_key(token: str) -> bytes:
    """The 32-byte key every use of the token derives from (it never leaves the process).

    The token is stretched with HKDF, not a slow password hash: it must be random, not a
    passphrase, which is why short tokens are refused.
    """
    token = token.strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"the join token has {len(token)} characters; use a random one of at least "
                         f"{MIN_TOKEN_CHARS}, for example from "
                         "python -c \"import secrets; print(secrets.token_urlsafe(32))\"")
    return _hkdf(token.encode(), salt=None, info=PROTOCOL + b" token", length=32)


def mac(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 over a list of byte strings."""
    return hmac.new(key, _encode(parts), sha256).digest()


def _encode(parts: tuple[bytes, ...]) -> bytes:
    """Length-prefixed concatenation: no two different lists of parts give the same bytes."""
    return b"".join(struct.pack("<I", len(part)) + part for part in parts)


def _hkdf(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


# -- key agreement ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairKeys:
    """What one party derived for its link with one peer (the keys stay out of its repr and logs)."""

    peer: str
    send: bytes = field(repr=False)  # me -> peer
    receive: bytes = field(repr=False)  # peer -> me
    my_confirmation: bytes = field(repr=False)  # proves to the peer that I hold the token and my key
    peer_confirmation: bytes = field(repr=False)  # what the peer must send, if it holds the token

    def accepts(self, confirmation: bytes) -> bool:
        return hmac.compare_digest(confirmation, self.peer_confirmation)

    def channel(self, me: str) -> SealedChannel:
        return SealedChannel(me, self.peer, self.send, self.receive)


class KeyAgreement:
    """One party's ephemeral X25519 key for one run, and the keys it derives with each peer.

    For a pair, the lower rank is the *initiator*: it sends its public key first; the responder
    answers with its public key and a confirmation; the initiator checks it and only then sends
    its own confirmation (or a refusal). So a party that does not hold the token learns public
    keys and, from responders, one confirmation each: nothing that decrypts anything.
    """

    def __init__(self, me: str, token_key: bytes, run_id: bytes) -> None:
        self.me = me
        self._psk = token_key
        self._run_id = run_id
        self._private = X25519PrivateKey.generate()
        self.public = self._private.public_key().public_bytes_raw()

    def keys_with(self, peer: str, peer_public: bytes, initiator: bool) -> PairKeys | None:
        """The keys for the link with `peer`, or None if its public key is unusable."""
        first, second = (self.me, peer) if initiator else (peer, self.me)
        first_public, second_public = (self.public, peer_public) if initiator else (peer_public, self.public)
        transcript = sha256(_encode((PROTOCOL, self._run_id, first.encode(), second.encode(),
                                     first_public, second_public))).digest()
        try:
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError:  # a low-order point: the shared secret would be all zeros
            return None
        # The token is the HKDF salt: without it, the shared secret alone gives no key at all.
        okm = _hkdf(shared, salt=self._psk, info=PROTOCOL + b" keys" + transcript, length=128)
        first_to_second, second_to_first, first_confirm, second_confirm = (okm[i:i + 32] for i in range(0, 128, 32))
        tags = {role: mac(key, PROTOCOL + b" confirm " + role.encode(), transcript)
                for role, key in (("initiator", first_confirm), ("responder", second_confirm))}
        if initiator:
            return PairKeys(peer, first_to_second, second_to_first, tags["initiator"], tags["responder"])
        return PairKeys(peer, second_to_first, first_to_second, tags["responder"], tags["initiator"])


REFUSAL = bytes(CONFIRMATION_BYTES)  # what an initiator sends instead of its confirmation


# -- sealed messages -------------------------------------------------------------------------------
def as_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor's memory as a flat uint8 tensor (no copy if it is contiguous)."""
    return tensor.contiguous().view(-1).view(torch.uint8)


class SealedChannel:
    """Both directions between this party and one peer: a key and a message counter each way.

    The counter is the nonce and part of the associated data; it is never sent, each side counts
    for itself. The receiver posts its receives in the order the messages were sent (every party
    runs the same program), so the n-th receive from a peer opens with counter n: a replayed,
    dropped or reordered message opens with the wrong counter and fails like a forged one.
    """

    overhead = TAG_BYTES
    cipher = CIPHER

    def __init__(self, me: str, peer: str, send_key: bytes, receive_key: bytes) -> None:
        self.me, self.peer = me, peer
        self._encrypt_into = AESGCM(send_key).encrypt_into
        self._decrypt_into = AESGCM(receive_key).decrypt_into
        self._send_label = f"{me}->{peer}#".encode()
        self._receive_label = f"{peer}->{me}#".encode()
        self._sent = 0
        self._received = 0
        self.seconds = 0.0  # spent in AES-GCM, both directions

    # --8<-- [start:sealed]
    def seal(self, payload: torch.Tensor) -> torch.Tensor:
        """The ciphertext and tag of a flat uint8 payload, in a new uint8 tensor ready to send."""
        counter = self._sent
        self._sent += 1
        wire = torch.empty(payload.numel() + TAG_BYTES, dtype=torch.uint8)
        nonce = _nonce(counter)
        start = time.perf_counter()
        self._encrypt_into(nonce, payload.numpy(), self._send_label + nonce, wire.numpy())
        self.seconds += time.perf_counter() - start
        return wire

    def expect(self, payload: torch.Tensor) -> tuple[torch.Tensor, int]:
        """A buffer for the next message into `payload` (flat uint8), and that message's number."""
        counter = self._received
        self._received += 1
        return torch.empty(payload.numel() + TAG_BYTES, dtype=torch.uint8), counter

    def open(self, wire: torch.Tensor, counter: int, payload: torch.Tensor) -> None:
        """Check message number `counter` and decrypt it into `payload`; raise if it is not genuine."""
        nonce = _nonce(counter)
        start = time.perf_counter()
        try:
            self._decrypt_into(nonce, wire.numpy(), self._receive_label + nonce, payload.numpy())
        except InvalidTag:
            raise ChannelError(
                f"message #{counter} from {self.peer} to {self.me} failed authentication: it was modified, "
                f"replayed, reordered or forged on the way (or {self.peer} holds other keys)") from None
        finally:
            self.seconds += time.perf_counter() - start
    # --8<-- [end:sealed]


class ClearChannel:
    """No encryption (--insecure-channel): the payload travels as it is. For measuring the cost
    of the sealed channel, and to show what a capture of unencrypted traffic reveals."""

    overhead = 0
    cipher = "none"

    def __init__(self) -> None:
        self.seconds = 0.0

    def seal(self, payload: torch.Tensor) -> torch.Tensor:
        return payload

    def expect(self, payload: torch.Tensor) -> tuple[torch.Tensor, int]:
        return payload, 0

    def open(self, wire: torch.Tensor, counter: int, payload: torch.Tensor) -> None:
        pass


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(12, "little")
