#!/bin/bash
# per-epoch time: paper's constraint regime vs the new regimes, same conditions (6000 rows, 2 epochs)
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
C="--dataset fashion-mnist --train-limit 6000 --epochs 2 --device cpu --no-progress"
nice -n 10 .venv/bin/verify train $C --regime constraint --property sr -o results/certified/speed/constraint-sr.onnx
nice -n 10 .venv/bin/verify train $C --regime certified --property cr --warmup-epochs 0 --ramp-epochs 2 -o results/certified/speed/certified-cr-crown.onnx
nice -n 10 .venv/bin/verify train $C --regime certified --property cr --bound ibp --warmup-epochs 0 --ramp-epochs 1 -o results/certified/speed/certified-cr-ibp.onnx
nice -n 10 .venv/bin/verify train $C --regime lipschitz -o results/certified/speed/lipschitz.onnx
nice -n 10 .venv/bin/verify train $C --regime constraint --property sr -o results/certified/speed/constraint-sr-again.onnx
for f in results/certified/speed/*.log.jsonl; do echo $f; python3 -c "
import json,sys
print([json.loads(l)['seconds'] for l in open('$f')])"; done
