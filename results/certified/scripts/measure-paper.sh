#!/bin/bash
# certified satisfaction at eps 0.1 of the paper's networks (copies of results/networks/fashion-mnist, 100-epoch runs)
cd "$(dirname "$0")/../../.."
export OMP_NUM_THREADS=1
for prop in cr scr sr; do
for net in baseline augment-uniform augment-fgsm adversarial; do
  nice -n 10 .venv/bin/verify run --property $prop --eps 0.1 --net results/networks/fashion-mnist/$net.onnx --data fashion-mnist \
    --points 100 --timeout 10 --metrics satisfaction --json /tmp/paper-nets-$net-$prop-0.1.json --store /tmp/paper-nets-verdicts.sqlite 2>&1 | grep -v "it/s\|pt/s"
done; done
