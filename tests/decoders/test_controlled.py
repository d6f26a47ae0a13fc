"""The ODE decoder with covariates: held inputs and static features in the field, doses as jumps."""

from __future__ import annotations

import pytest
import torch
import torchdiffeq

from latentode.core import ControlledField, DoseJump, InputGain, SolverConfig, VectorField
from latentode.data.batch import CovariateBatch, IrregularBatch
from latentode.decoders import FlowDecoder, ODEDecoder
from latentode.model import LatentODEModel

f64 = torch.float64
TIGHT = SolverConfig("dopri5", rtol=1e-10, atol=1e-12)


def _covariates() -> CovariateBatch:
    """Two series: a (changes at −0.5, 0.4, 1.1; a dose at 0.4) and b (0 and 0.7; a dose at 0)."""
    return CovariateBatch(
        times=torch.tensor([[-0.5, 0.4, 1.1], [0.0, 0.7, 0.7]], dtype=f64),
        held=torch.tensor([[[1.0], [-2.0], [0.5]], [[0.3], [1.5], [1.5]]], dtype=f64),
        doses=torch.tensor([[[0.0], [1.0], [0.0]], [[2.0], [0.0], [0.0]]], dtype=f64),
        static=torch.tensor([[0.2], [-1.0]], dtype=f64),
        lengths=torch.tensor([3, 2]),
    )


def _decoder(seed: int = 0, n_impulse: int = 1) -> ODEDecoder:
    torch.manual_seed(seed)
    dec = ODEDecoder(
        3, 2, width=16, depth=1, n_held=1, n_impulse=n_impulse, n_static=1, train_solver=TIGHT
    ).double()
    if dec.dose_jump is not None:  # a jump that moves the state (it starts at zero)
        torch.nn.init.normal_(dec.dose_jump.net[-1].weight, std=0.5)
    return dec.eval()


def _drift(dec: ODEDecoder):
    """The decoder's dz/dt under a constant ``c = (u, s)``."""
    return ControlledField(dec.field, dec.input_gain).drift


def _segments(dec: ODEDecoder, cov: CovariateBatch, z0: torch.Tensor, times: torch.Tensor):
    """The same path solved piece by piece with torchdiffeq, jumping by hand."""

    def solve(z, c, t_from, t_to):
        if t_to == t_from:
            return z
        grid = torch.tensor([t_from, t_to], dtype=f64)
        return torchdiffeq.odeint(
            lambda t, y: _drift(dec)(t, y, c), z, grid, rtol=1e-11, atol=1e-13
        )[-1]

    out = []
    for b in range(z0.shape[0]):
        n = int(cov.lengths[b])
        change, held, dose = cov.times[b, :n], cov.held[b, :n], cov.doses[b, :n]
        z, now = z0[b], 0.0
        if dec.dose_jump is not None and bool((change == 0).any()):
            z = dec.dose_jump(z, dose[int((change == 0).nonzero()[0, 0])])
        k = int((change <= 0).sum()) - 1
        c = torch.cat([held[k], cov.static[b]])
        pending = [(float(change[j]), j) for j in range(n) if change[j] > 0]
        path = []
        for t in times[b].tolist():
            while pending and pending[0][0] <= t:  # a change acts at its instant
                at, j = pending.pop(0)
                z, now = solve(z, c, now, at), at
                if dec.dose_jump is not None:
                    z = dec.dose_jump(z, dose[j])
                c = torch.cat([held[j], cov.static[b]])
            z, now = solve(z, c, now, t), t
            path.append(z)
        out.append(torch.stack(path))
    return torch.stack(out)


def test_the_decoder_follows_its_field_piece_by_piece_between_changes():
    dec, cov = _decoder(), _covariates()
    z0 = torch.randn(2, 3, dtype=f64, generator=torch.Generator().manual_seed(1))
    times = torch.tensor([[0.2, 0.4, 0.9, 1.5], [0.0, 0.5, 0.7, 1.2]], dtype=f64)  # and at changes
    with torch.no_grad():
        ours = dec.trajectory(z0.unsqueeze(0), times, cov)[0]
        theirs = _segments(dec, cov, z0, times)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-8)


def test_inputs_change_the_decoded_path_and_gradients_reach_every_part():
    dec, cov = _decoder(), _covariates()
    z0 = torch.randn(2, 3, dtype=f64, generator=torch.Generator().manual_seed(2))
    times = torch.tensor([[0.2, 0.9, 1.5], [0.5, 1.0, 1.2]], dtype=f64)
    other = CovariateBatch(cov.times, cov.held * 3, cov.doses, cov.static, cov.lengths)
    with torch.no_grad():
        base = dec(z0.unsqueeze(0), times, cov)
        assert float((dec(z0.unsqueeze(0), times, other) - base).abs().max()) > 1e-3
    z = z0.clone().requires_grad_(True)
    dec.train()(z.unsqueeze(0), times, cov).square().sum().backward()
    assert float(z.grad.abs().sum()) > 0
    assert float(dec.dose_jump.net[-1].weight.grad.abs().sum()) > 0
    assert float(dec.field.input.weight.grad[:, 3:].abs().sum()) > 0  # the static feature
    assert float(dec.input_gain.net[-1].weight.grad.abs().sum()) > 0  # the held input's gain


def test_gradcheck_through_changes_and_doses():
    dec, cov = _decoder(), _covariates()
    times = torch.tensor([[0.2, 0.9], [0.5, 1.0]], dtype=f64)

    def run(z0):
        return dec(z0.unsqueeze(0), times, cov)

    z0 = torch.randn(2, 3, dtype=f64, generator=torch.Generator().manual_seed(3))
    assert torch.autograd.gradcheck(run, (z0.requires_grad_(True),), atol=1e-6, rtol=1e-5)


def test_a_zero_dose_leaves_the_state_exactly_as_it_was():
    jump = DoseJump(4, 2).double()
    torch.nn.init.normal_(jump.net[-1].weight)
    z = torch.randn(5, 4, dtype=f64)
    assert torch.equal(jump(z, torch.zeros(5, 2, dtype=f64)), z)
    assert not torch.equal(jump(z, torch.ones(5, 2, dtype=f64)), z)


def test_times_before_zero_run_back_through_held_inputs_but_not_through_doses():
    dec, cov = _decoder(n_impulse=0), _covariates()
    cov = CovariateBatch(cov.times, cov.held, cov.doses[..., :0], cov.static, cov.lengths)
    z0 = torch.randn(1, 3, dtype=f64, generator=torch.Generator().manual_seed(4))
    first = CovariateBatch(*(t[:1] for t in (cov.times, cov.held, cov.doses, cov.static)),
                           cov.lengths[:1])  # fmt: skip
    with torch.no_grad():
        back = dec.trajectory(z0.unsqueeze(0), torch.tensor([[-0.4]], dtype=f64), first)[0, 0, 0]
        c = torch.cat([first.held[0, 0], first.static[0]])  # in force on [-0.5, 0.4)
        grid = torch.tensor([0.0, -0.4], dtype=f64)
        field = lambda t, y: _drift(dec)(t, y, c)  # noqa: E731
        theirs = torchdiffeq.odeint(field, z0[0], grid, rtol=1e-11, atol=1e-13)[-1]
    torch.testing.assert_close(back, theirs, rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match=r"cannot be decoded with impulse inputs"):
        _decoder().trajectory(
            z0.unsqueeze(0), torch.tensor([[-0.4]], dtype=f64), _covariates().select([0])
        )


def test_the_compensator_integrates_along_the_controlled_path():
    dec, cov = _decoder(), _covariates()
    z0 = torch.randn(2, 3, dtype=f64, generator=torch.Generator().manual_seed(5))
    grid = torch.linspace(0.0, 1.5, 1201, dtype=f64).expand(2, -1)
    integrand = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Softplus()).double()
    with torch.no_grad():
        z, integral = dec.trajectory_with_integral(z0.unsqueeze(0), grid, integrand, cov)
        trapezoid = torch.cumulative_trapezoid(integrand(z[0])[..., 0], grid, dim=-1)
    torch.testing.assert_close(integral[0, :, 1:, 0], trapezoid, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    ("covariates", "match"),
    [
        (None, r"this decoder reads covariates \(1 held inputs, 1 impulse inputs, 1 static"),
        (
            CovariateBatch(
                torch.zeros(2, 1, dtype=f64),
                torch.zeros(2, 1, 2, dtype=f64),
                torch.zeros(2, 1, 1, dtype=f64),
                torch.zeros(2, 1, dtype=f64),
                torch.ones(2, dtype=torch.long),
            ),
            r"the batch's covariates have 2 held inputs, 1 impulse inputs and 1 static",
        ),
    ],
)
def test_a_batch_that_does_not_match_the_decoder_is_refused(covariates, match):
    dec = _decoder()
    with pytest.raises(ValueError, match=match):
        dec(torch.zeros(1, 2, 3, dtype=f64), torch.ones(2, 1, dtype=f64), covariates)


def test_the_encoder_reads_the_inputs_and_static_features():
    torch.manual_seed(0)
    model = LatentODEModel(1, 4, n_held_inputs=1, n_impulse_inputs=1, n_static_features=1)
    model = model.double()
    cov = _covariates()
    batch = IrregularBatch(
        values=torch.tensor([[[0.1], [0.3]], [[0.2], [0.0]]], dtype=f64),
        mask=torch.tensor([[[1.0], [1.0]], [[1.0], [0.0]]], dtype=f64),
        times=torch.tensor([[0.0, 0.6], [0.0, 0.0]], dtype=f64),
        lengths=torch.tensor([2, 1]),
        covariates=cov,
    )
    q, _ = model.encode(batch)
    for other in (
        CovariateBatch(cov.times, cov.held + 1, cov.doses, cov.static, cov.lengths),
        CovariateBatch(cov.times, cov.held, cov.doses * 2, cov.static, cov.lengths),
        CovariateBatch(cov.times, cov.held, cov.doses, cov.static + 1, cov.lengths),
    ):
        moved, _ = model.encode(IrregularBatch(**{**batch.__dict__, "covariates": other}))
        assert float((moved.loc - q.loc).abs().max()) > 1e-6
    with pytest.raises(ValueError, match=r"reads covariates .* the batch carries none"):
        model.encode(IrregularBatch(**{**batch.__dict__, "covariates": None}))


def test_the_field_is_affine_in_the_held_inputs():
    """Doubling a held input doubles its push on the state: G(z, s)·u, whatever u's range."""
    torch.manual_seed(0)
    field = ControlledField(VectorField(3, width=8, n_inputs=1), InputGain(3, 2, 1)).double()
    z = torch.randn(4, 3, dtype=f64)
    s = torch.randn(4, 1, dtype=f64)
    u = 5.0 * torch.randn(4, 2, dtype=f64)
    drift = field.drift(torch.zeros((), dtype=f64), z, torch.cat([0 * u, s], -1))
    once = field.drift(torch.zeros((), dtype=f64), z, torch.cat([u, s], -1)) - drift
    twice = field.drift(torch.zeros((), dtype=f64), z, torch.cat([2 * u, s], -1)) - drift
    torch.testing.assert_close(twice, 2 * once)


def test_a_flow_decoder_flows_from_change_to_change():
    """z(t) = F(t − b, (z(b), c_b)) from the last change b at or before t, with the jumps:
    a change acts at its instant, so outputs at 0.4 (a dose) and 0.7 read the state after."""
    torch.manual_seed(0)
    dec = FlowDecoder(3, 2, width=16, n_held=1, n_impulse=1, n_static=1, train_solver=TIGHT)
    dec = dec.double().eval()
    torch.nn.init.normal_(dec.dose_jump.net[-1].weight, std=0.5)
    cov = _covariates()
    z0 = torch.randn(2, 3, dtype=f64, generator=torch.Generator().manual_seed(6))
    times = torch.tensor([[0.2, 0.4, 0.9, 1.5], [0.5, 0.7, 1.0, 1.2]], dtype=f64)
    with torch.no_grad():
        ours = dec.trajectory(z0.unsqueeze(0), times, cov)[0]

        def flow(t, z, b, k):  # from change k of series b
            c = torch.cat([cov.held[b, k], cov.static[b]])
            return dec.flow(torch.tensor(t, dtype=f64), torch.cat([z, c]))[:3]

        # series a: c from change 0 (at −0.5) until 0.4, where a dose lands, then change 1
        at_04 = dec.dose_jump(flow(0.4, z0[0], 0, 0), cov.doses[0, 1])
        at_11 = flow(0.7, at_04, 0, 1)
        expect_a = [flow(0.2, z0[0], 0, 0), flow(0.0, at_04, 0, 1), flow(0.5, at_04, 0, 1),
                    flow(0.4, at_11, 0, 2)]  # fmt: skip
        # series b: a dose at exactly 0, then change 1 at 0.7 (its copy at 0.7 is padding)
        start = dec.dose_jump(z0[1], cov.doses[1, 0])
        at_07 = flow(0.7, start, 1, 0)
        expect_b = [flow(0.5, start, 1, 0), flow(0.0, at_07, 1, 1), flow(0.3, at_07, 1, 1),
                    flow(0.5, at_07, 1, 1)]  # fmt: skip
    torch.testing.assert_close(ours[0], torch.stack(expect_a), rtol=0, atol=1e-12)
    torch.testing.assert_close(ours[1], torch.stack(expect_b), rtol=0, atol=1e-12)
    assert torch.equal(dec.trajectory(z0.unsqueeze(0), torch.zeros(2, 1, dtype=f64), cov)[0, 0, 0],
                       z0[0])  # fmt: skip
    with pytest.raises(ValueError, match=r"decodes from each series' first observation on"):
        dec.trajectory(z0.unsqueeze(0), -times, cov)
    # the Poisson integral follows the same path: a quadrature stepped to each change point
    grid = torch.linspace(0.0, 1.5, 1201, dtype=f64).expand(2, -1)
    integrand = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Softplus()).double()
    with torch.no_grad():
        z, integral = dec.trajectory_with_integral(z0.unsqueeze(0), grid, integrand, cov)
        torch.testing.assert_close(z, dec.trajectory(z0.unsqueeze(0), grid, cov))
        trapezoid = torch.cumulative_trapezoid(integrand(z[0])[..., 0], grid, dim=-1)
    torch.testing.assert_close(integral[0, :, 1:, 0], trapezoid, rtol=0, atol=1e-4)


def test_backward_rows_start_from_the_inputs_in_force_before_a_change_at_zero():
    """A change exactly at 0 is behind a backward row: below 0 the previous value holds."""
    dec = _decoder(n_impulse=0)
    cov = CovariateBatch(
        times=torch.tensor([[-1.0, 0.0, 2.0]], dtype=f64),
        held=torch.tensor([[[0.0], [5.0], [1.0]]], dtype=f64),
        doses=torch.zeros(1, 3, 0, dtype=f64),
        static=torch.tensor([[0.3]], dtype=f64),
        lengths=torch.tensor([3]),
    )
    z0 = torch.randn(1, 3, dtype=f64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        back = dec.trajectory(z0.unsqueeze(0), torch.tensor([[-0.5]], dtype=f64), cov)[0, 0, 0]
        c = torch.cat([cov.held[0, 0], cov.static[0]])  # 0 on [-1, 0), not the 5 from 0 on
        grid = torch.tensor([0.0, -0.5], dtype=f64)
        field = lambda t, y: _drift(dec)(t, y, c)  # noqa: E731
        theirs = torchdiffeq.odeint(field, z0[0], grid, rtol=1e-11, atol=1e-13)[-1]
    torch.testing.assert_close(back, theirs, rtol=0, atol=1e-8)


def test_the_encoder_reads_a_dose_given_where_nothing_was_observed():
    torch.manual_seed(0)
    model = LatentODEModel(1, 4, n_held_inputs=1, n_impulse_inputs=1).double()

    def batch(dose):
        cov = CovariateBatch(
            times=torch.tensor([[0.0, 0.5, 1.0]], dtype=f64),
            held=torch.zeros(1, 3, 1, dtype=f64),
            doses=torch.tensor([[[0.0], [dose], [0.0]]], dtype=f64),
            static=torch.zeros(1, 0, dtype=f64),
            lengths=torch.tensor([3]),
        )
        return IrregularBatch(
            values=torch.tensor([[[0.1], [0.0], [0.3]]], dtype=f64),
            mask=torch.tensor([[[1.0], [0.0], [1.0]]], dtype=f64),  # nothing observed at 0.5
            times=torch.tensor([[0.0, 0.5, 1.0]], dtype=f64),
            lengths=torch.tensor([3]),
            covariates=cov,
        )

    without, _ = model.encode(batch(0.0))
    with_dose, _ = model.encode(batch(2.0))
    assert float((with_dose.loc - without.loc).abs().max()) > 1e-6
