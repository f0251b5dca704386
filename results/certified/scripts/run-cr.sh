#!/bin/bash
# certified CR, Fashion-MNIST, full training set
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
nice -n 10 .venv/bin/verify train --dataset fashion-mnist --regime certified --property cr --eps 0.1 \
  --preset certified --epochs 40 --warmup-epochs 1 --ramp-epochs 15 --kappa-end 0.5 --device cpu \
  -o results/certified/cr-k05/model.onnx --no-progress
