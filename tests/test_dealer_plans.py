"""The crypto provider in its own process deals from a plan: the same numbers, checked every step.

Each party runs in its own thread with its own session (tests/party_threads.py), so the provider
sees only itself, as in `--parties processes`. The plans must change nothing at all: the same
losses and test counts, bit for bit, as the provider replaying every step and as one process.
A plan that differs from what the workers ask for must stop the run before the step's loss is
revealed; the mutation tests show that the digest check is what stops it.
"""

from __future__ import annotations

import pytest
import torch

from party_threads import PartiesFailed, isolate_data_loader_draws, run_parties
from secure_mnist.bench import _encrypted_step
from secure_mnist.errors import DealerPlanError
from secure_mnist.mpc.opening import Mask
from secure_mnist.mpc.provider import plan as plans
from secure_mnist.mpc.session import Session
from secure_mnist.training import TrainingConfig, one_hot, placeholder_batches, plaintext_batches, train_encrypted

@pytest.fixture(autouse=True)
def _own_data_loader_draws(monkeypatch):
    isolate_data_loader_draws(monkeypatch)


SMALL = dict(n_train_items=100, n_test_items=40, batch_size=32, test_batch_size=16, epochs=2, activation="relu")


def _losses(config: TrainingConfig, *, threads: bool = True, seed: int = 5) -> tuple[list, int]:
    """The client's losses and test count, and how many steps the provider dealt from plans."""
    if not threads:
        result = train_encrypted(config, Session(encoder=config.encoder, seed=seed))
        return [log.loss for log in result.batch_logs] + [result.correct], 0
    results = run_parties(lambda session: (train_encrypted(config, session), session.dealing.steps_from_plans),
                          seed=seed, encoder=config.encoder)
    client, _ = results["me"]
    return [log.loss for log in client.batch_logs] + [client.correct], results["crypto_provider"][1]


@pytest.mark.parametrize("settings", [
    dict(),  # the tutorial's settings: openings kept, test at the end
    dict(loss="cross-entropy", momentum=0.9, test_every_epoch=True),
    dict(keep_openings=False, base=2, precision_fractional=16, test_every_epoch=True),
], ids=["tutorial", "cross-entropy-momentum-tests", "forget-openings-binary"])
def test_plans_give_the_same_numbers_as_replaying_and_as_one_process(settings, monkeypatch):
    config = TrainingConfig(**{**SMALL, **settings})
    planned, from_plans = _losses(config)
    # 4 batches per epoch (the last one short), 2 epochs: each new kind of step is replayed once
    # (a first batch, a short batch, batches opened before or not, parameters opened by a test)
    assert from_plans >= 3
    monkeypatch.setenv(plans.PLANS_VARIABLE, "0")
    replayed, none_from_plans = _losses(config)
    assert none_from_plans == 0
    assert planned == replayed
    assert planned == _losses(config, threads=False)[0]


def _bench_job(steps: int, tamper=None, done: dict | None = None):
    """The bench's step, `steps` times; `done` counts the steps each party finished (the client's
    steps end with the loss revealed to it)."""
    config = TrainingConfig(**SMALL)

    def job(session: Session):
        me = next(party.name for party in session.parties() if session.is_local(party))
        images, labels = (plaintext_batches(config, train=True)[0] if session.is_local(session.client)
                          else placeholder_batches(config, train=True)[0])
        step, _ = _encrypted_step(config, images, one_hot(labels), session)
        for number in range(steps):
            if tamper and number == 2 and session.is_local(session.provider):
                tamper(session.dealing.plans)
            step()
            if done is not None:
                done[me] = number + 1
        return session.dealing.steps_from_plans

    return job


def test_a_repeated_step_is_dealt_from_its_plan_and_the_provider_receives_nothing():
    results = run_parties(_bench_job(5))
    assert results["crypto_provider"] == 3  # steps 1 and 2 recorded (batch not yet / already opened)
    assert results["alice"] == results["bob"] == results["me"] == 0  # only a provider alone plans


def _draw_one_more_word(recorded: dict) -> None:
    """A wrong plan that sends the same messages: one mask request draws one word more, so the
    provider's streams and the workers' part ways without any message changing size."""
    for key, plan in recorded.items():
        for index, request in enumerate(plan.requests):
            if isinstance(request.derive, plans.NewMasks):
                masks = plans.NewMasks([*request.derive.sizes, 1], [*request.derive.shapes, torch.Size([1])])
                plan.requests[index] = plans.Request(request.n_random + 1, request.n_derived, request.sharing,
                                                     request.random_bits, masks)
                break


def test_a_plan_that_differs_from_the_requests_stops_the_step_before_its_loss_is_revealed():
    done: dict[str, int] = {}
    with pytest.raises(PartiesFailed) as failed:
        run_parties(_bench_job(5, tamper=_draw_one_more_word, done=done))
    assert done["me"] == 2  # the client never got the loss of the third step
    errors = failed.value.failures
    worker_errors = [errors[w] for w in ("alice", "bob") if isinstance(errors.get(w), DealerPlanError)]
    assert worker_errors, errors
    assert "step 3" in str(worker_errors[0]) and "crypto provider" in str(worker_errors[0])


def test_mutation_without_the_digest_check_the_wrong_step_is_revealed(monkeypatch):
    """The check above is what stops a wrong plan: without it the client gets the wrong step's loss
    (a garbage value, which may or may not trip a later check)."""
    monkeypatch.setattr(plans.Dealing, "_compare", lambda self, worker, theirs, mine: None)
    done: dict[str, int] = {}
    try:
        run_parties(_bench_job(5, tamper=_draw_one_more_word, done=done))
    except PartiesFailed as failed:
        assert not any(isinstance(error, DealerPlanError) for error in failed.failures.values())
    assert done["me"] >= 3


def test_a_step_the_recorder_cannot_name_is_replayed_with_the_same_numbers(monkeypatch):
    """A mask the recorder cannot trace (here: every one) leaves the step to be replayed, as before."""
    config = TrainingConfig(**SMALL)
    in_one_process = _losses(config, threads=False)[0]
    monkeypatch.setattr(plans.Recorder, "ref", lambda self, mask: (_ for _ in ()).throw(plans.CannotPlan()))
    replayed, from_plans = _losses(config)
    assert from_plans == 0
    assert replayed == in_one_process


def test_plan_keys_tell_opened_inputs_from_fresh_ones():
    session = Session(seed=1)
    from secure_mnist.mpc.sharing import AdditiveSharingTensor
    x = AdditiveSharingTensor(session, {w: torch.zeros(3, 4, dtype=torch.int64) for w in session.workers})
    fresh = plans.plan_key([x])
    x.map(torch.t).opening = object()  # type: ignore[assignment]  # a transpose kept with x, opened
    view_opened = plans.plan_key([x])
    x.opening = object()  # type: ignore[assignment]
    assert len({fresh, view_opened, plans.plan_key([x])}) == 3 and fresh == (((3, 4), ()),)


def test_a_derivation_holding_values_of_its_step_is_not_planned():
    """A plan runs its derivations again on later steps: one that captured a tensor (or a mask) of
    the step it was recorded in would compute from stale values, so it is refused."""
    stale = torch.arange(4)
    shapes = [(2, 3), (3, 3)]
    plans._pure(lambda words: words[:4] & 1)  # the drawn words only: fine
    plans._pure(lambda words: words.split(shapes))  # shapes: fine
    in_a_list, in_a_dict = [stale], {"mask": Mask({}, stale)}
    for holds in (lambda words: words + stale, lambda words: words + in_a_list[0],
                  lambda words: words + in_a_dict["mask"].value):
        with pytest.raises(plans.CannotPlan):
            plans._pure(holds)


def test_a_provider_sharing_its_process_with_the_client_replays_and_still_sends_its_digests():
    """Only a provider alone in its process deals from plans; sharing one with the client, it
    replays the steps, and still sends its digest to both workers (who wait for it)."""
    config = TrainingConfig(**SMALL)
    results = run_parties(lambda session: (train_encrypted(config, session), session.dealing.steps_from_plans),
                          seed=5, groups=(("me", "crypto_provider"), ("alice",), ("bob",)), encoder=config.encoder)
    client, _ = results["me"]
    assert results["crypto_provider"][1] == 0
    assert [log.loss for log in client.batch_logs] + [client.correct] == _losses(config, threads=False)[0]
