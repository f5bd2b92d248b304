"""Kokoro's forward pass over a padded batch of phrases: one call of the model for many requests' phrases.

hexgrad's `KModel.forward_with_tokens` takes one phrase (its batch dimension is assumed to be 1): with several
phrases padded to the longest, parts of it would mix the padding into each phrase's result. This runs the same
modules, with the same weights, in the same order, and keeps every phrase's output what it would be alone:

- the bidirectional LSTMs see each phrase at its own length (packed sequences; the library leaves two unpacked);
- every instance norm takes its mean and variance over the phrase's own frames, not the padded ones;
- every convolution reads zeros past the phrase's end (what its own zero padding gives it alone), so the padded
  region is zeroed before each one;
- the duration alignment, the harmonic source's phase (whose linear upsampling reads one step past the end) and
  the vocoder's STFT and inverse STFT (reflection padding and the window envelope at the ends) are per phrase;
- the source noise is drawn per phrase from its own seeded generator, in the order the library draws it, so a
  phrase gives the same audio alone or in any batch (and, with one phrase, what `KModel` gives under that seed).

Nothing is stored on the modules (the library's `TorchSTFT.forward` keeps `self.magnitude`; this calls only its
stateless `transform`/`inverse`), so the call holds no per-call state between phrases or batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class KokoroPhrase:
    """One phrase for the model: token ids (with the two 0 pads), its style row [1, 256], speed, noise seed."""

    input_ids: tuple[int, ...]
    style: Any
    speed: float
    seed: int


def token_ids(vocab: dict[str, int], phonemes: str) -> tuple[int, ...]:
    """The phoneme string as the model's ids with its two pads (unknown symbols dropped, as `KModel.forward` does)."""
    return (0, *(vocab[p] for p in phonemes if p in vocab), 0)


class _Lengths:
    """Each phrase's real length along the time axis of the current tensor, and masks from it."""

    def __init__(self, torch: Any, lengths: Any, device: Any):
        self.torch, self.cpu, self.device = torch, lengths, device
        self.dev = lengths.to(device)

    def map(self, fn) -> _Lengths:
        return _Lengths(self.torch, fn(self.cpu), self.device)

    def mask(self, width: int, dtype: Any) -> Any:
        """[B, 1, width]: 1 inside each phrase, 0 past its end."""
        t = self.torch
        return (t.arange(width, device=self.device)[None, :] < self.dev[:, None]).to(dtype).unsqueeze(1)


def _conv_len(conv: Any, lengths: Any) -> Any:
    (k,), (s,), (p,), (d,) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    return (lengths + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_t_len(conv: Any, lengths: Any) -> Any:
    (k,), (s,), (p,), (d,), (o,) = conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.output_padding
    return (lengths - 1) * s - 2 * p + d * (k - 1) + o + 1


class _Pass:
    """One batched forward: the model, the device and the padded-batch helpers."""

    def __init__(self, torch: Any, model: Any, albert: Any = None):
        self.t, self.m, self.F = torch, model, torch.nn.functional
        self.device = model.device
        self.albert = albert  # an `AlbertGraphs` (engines/kokoro_graphs.py), or None: ALBERT at the batch's shape

    # --- masking helpers --------------------------------------------------------------------------------------

    def instance_norm(self, norm: Any, x: Any, m: Any) -> Any:
        """`nn.InstanceNorm1d` over each phrase's own frames (biased variance, as the module computes it)."""
        n = m.sum(-1, keepdim=True).clamp(min=1)
        mean = (x * m).sum(-1, keepdim=True) / n
        centred = (x - mean) * m
        var = (centred * centred).sum(-1, keepdim=True) / n
        y = (x - mean) * self.t.rsqrt(var + norm.eps)
        if norm.affine:
            y = y * norm.weight[None, :, None] + norm.bias[None, :, None]
        return y

    def adain(self, module: Any, x: Any, s: Any, m: Any) -> Any:
        h = module.fc(s)
        gamma, beta = self.t.chunk(h.view(h.size(0), h.size(1), 1), chunks=2, dim=1)
        return (1 + gamma) * self.instance_norm(module.norm, x, m) + beta

    def adain_resblk(self, block: Any, x: Any, s: Any, lengths: _Lengths) -> tuple[Any, _Lengths]:
        """`AdainResBlk1d.forward` with masks; returns the output and its lengths (doubled by an upsampling block)."""
        m = lengths.mask(x.shape[-1], x.dtype)
        x = x * m
        h = block.actv(self.adain(block.norm1, x, s, m))
        if block.upsample_type != "none":
            h = block.pool(h * m)
            lengths = lengths.map(lambda n: _conv_t_len(block.pool, n))
            m = lengths.mask(h.shape[-1], h.dtype)
        h = block.conv1(h * m)
        h = block.actv(self.adain(block.norm2, h, s, m))
        h = block.conv2(h * m)
        out = (h + block._shortcut(x)) * self.t.rsqrt(self.t.tensor(2))
        return out * m, lengths

    def adain_resblock1(self, block: Any, x: Any, s: Any, m: Any) -> Any:
        """istftnet's `AdaINResBlock1.forward` (Snake activations, dilated convolutions) with masks."""
        for c1, c2, n1, n2, a1, a2 in zip(block.convs1, block.convs2, block.adain1, block.adain2, block.alpha1,
                                          block.alpha2):
            xt = self.adain(n1, x, s, m)
            xt = xt + (1 / a1) * (self.t.sin(a1 * xt) ** 2)
            xt = c1(xt * m)
            xt = self.adain(n2, xt, s, m)
            xt = xt + (1 / a2) * (self.t.sin(a2 * xt) ** 2)
            xt = c2(xt * m)
            x = (xt + x) * m
        return x

    def lstm(self, lstm: Any, x: Any, lengths: _Lengths) -> Any:
        """A batch-first LSTM over each sequence at its own length; zeros past the end."""
        nn = self.t.nn.utils.rnn
        packed = nn.pack_padded_sequence(x, lengths.cpu, batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        out, _ = nn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out

    # --- the model ----------------------------------------------------------------------------------------------

    def forward(self, phrases: Sequence[KokoroPhrase]) -> list[np.ndarray]:
        t, m, device = self.t, self.m, self.device
        tokens = _Lengths(t, t.tensor([len(p.input_ids) for p in phrases]), device)
        width = int(tokens.cpu.max())
        ids = t.zeros((len(phrases), width), dtype=t.long)
        for i, p in enumerate(phrases):
            ids[i, : len(p.input_ids)] = t.tensor(p.input_ids)
        ids = ids.to(device)
        ref_s = t.cat([p.style.reshape(1, -1) for p in phrases]).to(device)
        speed = t.tensor([p.speed for p in phrases], device=device, dtype=ref_s.dtype)[:, None]
        text_mask = tokens.mask(width, t.bool).squeeze(1).logical_not()  # True past the end (KModel's convention)

        # Durations: ALBERT, the duration encoder (packed LSTMs, masked), then the duration LSTM per phrase.
        if self.albert is None:
            d_en = m.bert_encoder(m.bert(ids, attention_mask=(~text_mask).int())).transpose(-1, -2)
        else:
            d_en = self.albert.run(ids, ~text_mask).transpose(-1, -2)
        s = ref_s[:, 128:]
        d = m.predictor.text_encoder(d_en, s, tokens.cpu, text_mask)
        x = self.lstm(m.predictor.lstm, d, tokens)
        duration = t.sigmoid(m.predictor.duration_proj(x)).sum(axis=-1) / speed
        pred_dur = t.round(duration).clamp(min=1).long().masked_fill(text_mask, 0)
        frames = _Lengths(t, pred_dur.sum(1).cpu(), device)
        n_frames = int(frames.cpu.max())

        # Alignment: each frame takes its token's features (KModel multiplies by a one-hot matrix: the same values).
        ends = pred_dur.cumsum(1)
        positions = t.arange(n_frames, device=device)[None, :].expand(len(phrases), -1).contiguous()
        token_of_frame = t.searchsorted(ends, positions, right=True).clamp(max=width - 1)
        frame_mask = frames.mask(n_frames, ref_s.dtype)

        def align(features: Any) -> Any:  # [B, C, tokens] -> [B, C, frames]
            index = token_of_frame[:, None, :].expand(-1, features.shape[1], -1)
            return t.gather(features, 2, index) * frame_mask

        en = align(d.transpose(-1, -2))
        f0, noise, f0_lengths = self.f0_n(en, s, frames)
        t_en = m.text_encoder(ids, tokens.cpu, text_mask)
        asr = align(t_en)
        return self.decode(asr, f0, noise, ref_s[:, :128], frames, f0_lengths, phrases)

    def f0_n(self, en: Any, s: Any, frames: _Lengths) -> tuple[Any, Any, _Lengths]:
        """`ProsodyPredictor.F0Ntrain` per phrase: the pitch and energy curves at twice the frame rate."""
        p = self.m.predictor
        x = self.lstm(p.shared, en.transpose(-1, -2), frames).transpose(-1, -2)
        curves = []
        for blocks, proj in ((p.F0, p.F0_proj), (p.N, p.N_proj)):
            h, lengths = x, frames
            for block in blocks:
                h, lengths = self.adain_resblk(block, h, s, lengths)
            curves.append((proj(h) * lengths.mask(h.shape[-1], h.dtype)).squeeze(1))
        return curves[0], curves[1], lengths

    def decode(self, asr: Any, f0_curve: Any, n_curve: Any, s: Any, frames: _Lengths, f0_lengths: _Lengths,
               phrases: Sequence[KokoroPhrase]) -> list[np.ndarray]:
        """istftnet's `Decoder.forward` with masks, then the generator."""
        t, dec = self.t, self.m.decoder
        f0 = dec.F0_conv(f0_curve.unsqueeze(1))
        n = dec.N_conv(n_curve.unsqueeze(1))
        x = t.cat([asr, f0, n], axis=1)
        x, lengths = self.adain_resblk(dec.encode, x, s, frames)
        asr_res = dec.asr_res(asr)
        res = True
        for block in dec.decode:
            if res:
                m = lengths.mask(x.shape[-1], x.dtype)
                x = t.cat([x, asr_res * m, f0 * m, n * m], axis=1)
            x, lengths = self.adain_resblk(block, x, s, lengths)
            if block.upsample_type != "none":
                res = False
        return self.generate(x, s, f0_curve, lengths, f0_lengths, phrases)

    def harmonic_source(self, f0: Any, samples: _Lengths, f0_lengths: _Lengths,
                        phrases: Sequence[KokoroPhrase]) -> Any:
        """`SourceModuleHnNSF` (its `SineGen` without pulses) per phrase: [B, samples], noise from each phrase's
        own generator in the library's order (the initial phases, then the additive noise)."""
        t, F = self.t, self.F
        source = self.m.decoder.generator.m_source
        gen = source.l_sin_gen
        harmonics = t.arange(1, gen.harmonic_num + 2, device=f0.device, dtype=f0.dtype)
        fn = f0 * harmonics[None, None, :]
        rad = (fn / gen.sampling_rate) % 1
        noises, initial = [], []
        for i, phrase in enumerate(phrases):
            g = t.Generator(device=f0.device).manual_seed(phrase.seed)
            rand_ini = t.rand(1, gen.dim, generator=g, device=f0.device, dtype=f0.dtype)
            rand_ini[:, 0] = 0
            initial.append(rand_ini)
            n = int(samples.cpu[i])
            # Filled in a transposed view, as the library's `randn_like` fills its sine tensor (a transposed view):
            # the same seed then gives the same noise.
            noise = t.empty(1, gen.dim, n, device=f0.device, dtype=f0.dtype).transpose(1, 2).normal_(generator=g)
            noises.append(F.pad(noise, (0, 0, 0, f0.shape[1] - n)))
        rad[:, 0, :] = rad[:, 0, :] + t.cat(initial)
        scale = gen.upsample_scale
        rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / scale, mode="linear").transpose(1, 2)
        phase = t.cumsum(rad, dim=1) * 2 * t.pi
        # Past each phrase's end, repeat its last phase: the upsampling below then reads at the end what it reads
        # alone (its last value, clamped), not the next phrase's padding.
        last = (f0_lengths.dev - 1).clamp(min=0)
        index = t.minimum(t.arange(phase.shape[1], device=f0.device)[None, :], last[:, None])
        phase = t.gather(phase, 1, index[:, :, None].expand(-1, -1, phase.shape[2]))
        phase = F.interpolate(phase.transpose(1, 2) * scale, scale_factor=scale, mode="linear").transpose(1, 2)
        sines = t.sin(phase) * gen.sine_amp
        uv = (fn[:, :, :1] > gen.voiced_threshold).to(f0.dtype)
        noise_amp = uv * gen.noise_std + (1 - uv) * gen.sine_amp / 3
        sine_waves = sines * uv + noise_amp * t.cat(noises)
        merged = source.l_tanh(source.l_linear(sine_waves))
        return merged.transpose(1, 2).squeeze(1)

    def generate(self, x: Any, s: Any, f0_curve: Any, lengths: _Lengths, f0_lengths: _Lengths,
                 phrases: Sequence[KokoroPhrase]) -> list[np.ndarray]:
        """istftnet's `Generator.forward` with masks; the STFT of the source and the inverse STFT per phrase."""
        t, F = self.t, self.F
        g = self.m.decoder.generator
        scale = g.m_source.l_sin_gen.upsample_scale  # samples per pitch-curve step
        f0 = g.f0_upsamp(f0_curve[:, None]).transpose(1, 2)
        samples = f0_lengths.map(lambda n: n * scale)
        har_source = self.harmonic_source(f0, samples, f0_lengths, phrases)
        specs = [g.stft.transform(har_source[i : i + 1, : int(samples.cpu[i])]) for i in range(len(phrases))]
        har_frames = _Lengths(t, t.tensor([spec.shape[-1] for spec, _ in specs]), self.device)
        width = int(har_frames.cpu.max())
        har = t.cat([F.pad(t.cat([spec, phase], dim=1), (0, width - spec.shape[-1])) for spec, phase in specs])
        for i in range(g.num_upsamples):
            x = F.leaky_relu(x, negative_slope=0.1)
            source_lengths = har_frames.map(lambda n, conv=g.noise_convs[i]: _conv_len(conv, n))
            x_source = g.noise_convs[i](har)
            x_source = self.adain_resblock1(g.noise_res[i], x_source, s,
                                            source_lengths.mask(x_source.shape[-1], x_source.dtype))
            x = g.ups[i](x * lengths.mask(x.shape[-1], x.dtype))
            lengths = lengths.map(lambda n, conv=g.ups[i]: _conv_t_len(conv, n))
            if i == g.num_upsamples - 1:
                x = g.reflection_pad(x)
                lengths = lengths.map(lambda n: n + 1)
            m = lengths.mask(x.shape[-1], x.dtype)
            x = (x + x_source) * m
            xs = None
            for j in range(g.num_kernels):
                out = self.adain_resblock1(g.resblocks[i * g.num_kernels + j], x, s, m)
                xs = out if xs is None else xs + out
            x = xs / g.num_kernels
        x = F.leaky_relu(x)
        x = g.conv_post(x * lengths.mask(x.shape[-1], x.dtype))
        spec = t.exp(x[:, : g.post_n_fft // 2 + 1, :])
        phase = t.sin(x[:, g.post_n_fft // 2 + 1 :, :])
        audio = []
        for i in range(len(phrases)):
            n = int(lengths.cpu[i])
            wave = g.stft.inverse(spec[i : i + 1, :, :n], phase[i : i + 1, :, :n])
            audio.append(wave.float().reshape(-1).cpu().numpy())
        return audio


def forward_batch(torch: Any, model: Any, phrases: Sequence[KokoroPhrase], albert: Any = None) -> list[np.ndarray]:
    """Each phrase's 24 kHz audio, from one padded pass of `model` (a loaded `KModel`) over all of them. `albert`:
    an `AlbertGraphs` to run ALBERT in fixed-shape buckets (CUDA graphs) instead of at the batch's shape."""
    with torch.inference_mode():
        return _Pass(torch, model, albert).forward(phrases)
