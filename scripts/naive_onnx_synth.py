"""The naive baseline for ``python -m explorer bench cli``: Kokoro's int8 ONNX model run the way kokoro-onnx's README
shows, in one file, with nothing from ``explorer``.

espeak-ng phonemes (misaki's wrapper, offline), split at sentence punctuation into chunks of at most 510 tokens, one
``onnxruntime.InferenceSession`` with default options except intra-op threads set to the machine's core count (what
a careful user sets), the audio joined and written as a 24 kHz WAV.

    python scripts/naive_onnx_synth.py --model kokoro-v1.0-int8.onnx --config assets/config.json \
        --voice assets/voices/af_heart.bin --text "Hello there." --out hello.wav
"""

import argparse
import json
import os
import re

import numpy as np
import onnxruntime
import soundfile
from misaki.espeak import EspeakG2P

MAX_PHONEMES = 510

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
for name in ("--model", "--config", "--voice", "--text", "--out"):
    parser.add_argument(name, required=True)
args = parser.parse_args()

with open(args.config) as config:
    vocab = json.load(config)["vocab"]
voice = np.fromfile(args.voice, dtype=np.float32).reshape(-1, 1, 256)
phonemes, _ = EspeakG2P(language="en-us")(args.text)

chunks = [""]
for part in re.split(r"(?<=[.!?;,])\s*", phonemes):
    if chunks[-1] and len(chunks[-1]) + len(part) + 1 > MAX_PHONEMES:
        chunks.append("")
    chunks[-1] = f"{chunks[-1]} {part}".strip()

options = onnxruntime.SessionOptions()
options.intra_op_num_threads = os.cpu_count() or 1
session = onnxruntime.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
audio = []
for chunk in filter(None, chunks):
    tokens = [vocab[symbol] for symbol in chunk if symbol in vocab][:MAX_PHONEMES]
    style = voice[len(tokens) - 1]
    inputs = {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64), "style": style,
              "speed": np.ones(1, dtype=np.float32)}
    audio.append(session.run(None, inputs)[0])
soundfile.write(args.out, np.concatenate(audio), 24000)
print(f"wrote {args.out} ({sum(len(piece) for piece in audio) / 24000:.2f} s)")
