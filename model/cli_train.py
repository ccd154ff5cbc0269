"""``edgesplit train``: train a network from scratch on the shared CIFAR-10 training JPEGs (:mod:`model.train`).

``edgesplit train --net mobilenetv2_cifar [--data DIR] [--epochs N] [--batch-size B] [--lr LR] [--width W]
[--seed S] [--out FILE] [--log FILE] [--threads T] [--eval-every N] [--limit N] [--test-limit N] [--quiet]``
    Trains, evaluates the stored (float16) weights on all 10,000 test JPEGs, writes the checkpoint atomically
    (default ``build/train/<net>.pt``) and the log (default: the checkpoint's name with ``.log``); prints one
    line per epoch on stderr (and a progress bar on a terminal) and the final top-1 on stdout. Bad input
    (a network that cannot be trained, epochs outside 1..1000, lr <= 0 or > 10, batch size outside 1..4096,
    missing data, an ``--out`` or ``--log`` that cannot be written, checked before any work): one line on
    stderr, exit status 2. The checkpoint and the log appear together at the end; Ctrl-C leaves neither.
"""

from __future__ import annotations

import sys

from golden import limits
from model import train as T


def register(subparsers) -> None:
    d = T.TrainConfig()
    p = subparsers.add_parser(
        "train", help="train a network from scratch on the CIFAR-10 training JPEGs, write a checkpoint",
        description="Train a network from scratch on the shared CIFAR-10 training JPEGs (SGD, Nesterov momentum, "
                    "warm-up then cosine learning rate, label smoothing, random crop and flip), evaluate it on "
                    "the 10,000 test JPEGs and write the float16 checkpoint.")
    p.add_argument("--net", required=True, help=f"network to train: {', '.join(T.TRAINABLE_NETS)}")
    p.add_argument("--data", metavar="DIR", help="shared data folder (default: $EDGESPLIT_DATA or ../shared/data)")
    p.add_argument("--epochs", type=int, default=d.epochs, metavar="N",
                   help=f"epochs, {limits.EPOCHS.text()} (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, metavar="B",
                   help=f"batch size, {limits.BATCH_SIZE.text()} (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate, 0 < LR <= 10 (default {d.lr:g})")
    p.add_argument("--width", type=float, default=d.width, metavar="W",
                   help=f"width multiplier (default {d.width:g}, the shipped checkpoint's)")
    p.add_argument("--seed", type=int, default=d.seed, metavar="S",
                   help=f"random seed, 0..2^63-1 (default {d.seed})")
    p.add_argument("--out", metavar="FILE", help="checkpoint file; its folder is created if missing (default "
                                                 "build/train/<net>.pt)")
    p.add_argument("--log", metavar="FILE", help="log file (default: the checkpoint's name with .log)")
    p.add_argument("--threads", type=int, default=d.threads, metavar="T",
                   help=f"torch threads, {limits.THREADS.text()} (default {d.threads}; more only helps on an "
                        "otherwise idle machine)")
    p.add_argument("--eval-every", type=int, default=d.eval_every, metavar="N",
                   help=f"test top-1 in the log every N epochs, for monitoring; 0: at the end only "
                        f"(default {d.eval_every})")
    p.add_argument("--limit", type=int, metavar="N", help="train on N evenly spaced images only (quick runs; "
                                                          f"{limits.IMAGE_COUNT.text()})")
    p.add_argument("--test-limit", type=int, metavar="N",
                   help=f"evaluate on N evenly spaced test images only ({limits.IMAGE_COUNT.text()})")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines on stderr (the log has them)")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    cfg = T.TrainConfig(
        net=args.net, data=args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, width=args.width,
        seed=args.seed, out=args.out, log=args.log, threads=args.threads, eval_every=args.eval_every,
        limit=args.limit, test_limit=args.test_limit, progress=not args.quiet,
    )
    T.check_config(cfg)
    echo = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    r = T.train(cfg, echo)
    print(f"{r['net']} width {r['width_mult']:g}: top-1 {100 * r['top1']:.2f}% on {r['test_images']} test images "
          f"(stored float16 weights), {r['wall_s'] / 60:.1f} min; wrote {r['out']} and {r['log']}")
    return 0
