"""Run the authors' uSDN (github.com/aicip/uSDN, TensorFlow 1) on one pair under TensorFlow 2's
``tf.compat.v1``, for benchmarks/tensorflow_reference.py. Their files are imported unchanged; what TF 2,
numpy 2 and Python 3.11 removed is supplied here:

- ``tensorflow`` is ``tf.compat.v1`` in graph mode;
- ``tf.contrib.layers.fully_connected`` is a dense layer with Glorot-uniform weights and zero biases in
  its own uniquely named variable scope, and ``optimize_loss`` builds the optimiser with the given float
  learning rate and minimises the loss over the given variables, as tf.contrib did;
- ``np.int`` and ``collections.namedtuple(..., verbose=...)`` for their ``utils.readData``.

Usage (a Python with TensorFlow 2 and scipy):
    python run_usdn.py USDN_DIR PAIR.mat OUT.npz --seed S [--max_steps N] [--init_steps N] [--work DIR]
PAIR.mat holds hyperLR, multiHR, hyperHR (reflectance, rows x columns x bands) and srf (Cm x C, the
authors' orientation, which replaces the CAVE table their readData hard-codes). OUT.npz gets the fused
cube (H x W x C), the seconds and the number of steps.
"""
import argparse
import collections
import contextlib
import os
import sys
import time
import types

import numpy as np
import scipy.io


def install_shims():
    import tensorflow as tf2

    v1 = tf2.compat.v1
    v1.disable_eager_execution()

    def fully_connected(inputs, num_outputs, activation_fn=None):
        with v1.variable_scope(None, default_name="fully_connected"):
            weights = v1.get_variable("weights", [inputs.shape[-1], num_outputs],
                                      initializer=v1.glorot_uniform_initializer())
            biases = v1.get_variable("biases", [num_outputs], initializer=v1.zeros_initializer())
            out = v1.matmul(inputs, weights) + biases
        return out if activation_fn is None else activation_fn(out)

    def optimize_loss(loss, global_step, learning_rate, optimizer, variables):
        return optimizer(learning_rate).minimize(loss, global_step=global_step, var_list=variables)

    layers = types.ModuleType("tensorflow.contrib.layers")
    layers.fully_connected, layers.optimize_loss = fully_connected, optimize_loss
    contrib = types.ModuleType("tensorflow.contrib")
    contrib.layers = layers
    v1.contrib = contrib
    sys.modules.update({"tensorflow": v1, "tensorflow.contrib": contrib, "tensorflow.contrib.layers": layers})
    np.int = int
    namedtuple = collections.namedtuple
    collections.namedtuple = lambda *a, verbose=False, **k: namedtuple(*a, **k)
    return v1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("usdn_dir")
    parser.add_argument("pair")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max_steps", type=int, default=500000)
    parser.add_argument("--init_steps", type=int, default=15000)
    parser.add_argument("--work", default=None)
    opts = parser.parse_args()
    tf = install_shims()
    sys.path.insert(0, opts.usdn_dir)
    import pbAuto_uSDN
    import utils

    pair = scipy.io.loadmat(opts.pair)
    data = utils.readData(opts.pair, 12)                      # uSDN.py: num = 12
    data.srf = np.asarray(pair["srf"], dtype=np.float32)
    tf.set_random_seed(opts.seed)
    np.random.seed(opts.seed)
    # uSDN.py's main(): the same arguments, but maxiter and init_num; a save folder of our own.
    auto = pbAuto_uSDN.betapan(data, 0.001, 0.00001, [3] * 5, [3] * 5, opts.max_steps, True,
                               0.0001, 0.001, 0.0001, True, tf.ConfigProto())
    work = opts.work or os.path.dirname(os.path.abspath(opts.out))
    start = time.time()
    with open(os.path.join(work, f"usdn_seed{opts.seed}.log"), "w") as log, contextlib.redirect_stdout(log):
        auto.train(os.path.join(work, "no_checkpoint"), os.path.join(work, f"usdn_seed{opts.seed}"), False, 1.5,
                   opts.init_steps)
    seconds = time.time() - start
    fused = auto.sess.run(auto.gen_hrhsi(auto.hr_msi, reuse=True), feed_dict=auto.next_feed())
    rows, cols = data.dimHR[:2]
    np.savez(opts.out, fused=fused.reshape(rows, cols, -1), seconds=seconds)


if __name__ == "__main__":
    main()
