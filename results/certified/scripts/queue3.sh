#!/bin/bash
# after the SCR run (pid 7086): lipschitz with logit scale 10, then certified SR with IBP bounds (cheaper)
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
while kill -0 7086 2>/dev/null; do sleep 10; done
nice -n 10 .venv/bin/verify train --dataset fashion-mnist --regime lipschitz --lipschitz 10 --preset certified --epochs 30 \
  --lr 3e-4 --logit-scale 10 --device cpu -o results/certified/lipschitz-10-s10/model.onnx --no-progress
nice -n 10 .venv/bin/verify train --dataset fashion-mnist --regime certified --property sr --eps 0.1 --preset certified \
  --epochs 18 --bound ibp --warmup-epochs 1 --ramp-epochs 8 --kappa-end 0.5 --device cpu -o results/certified/sr-ibp/model.onnx --no-progress
