"""``ms-gan presets``: list the presets."""


def register(sub):
    p = sub.add_parser("presets", help="list the presets")
    p.set_defaults(func=run)


def run(args):
    from ms_gan import presets

    rows = [(name, f"{p.channels}x{p.image_size}x{p.image_size}", p.summary)
            for name, p in ((name, presets.get(name)) for name in presets.names())]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, shape, summary in rows:
        print(f"{name:<{widths[0]}}  {shape:<{widths[1]}}  {summary}")
    return 0
