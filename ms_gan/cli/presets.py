"""``ms-gan presets``: list the presets."""


def register(sub):
    p = sub.add_parser("presets", help="list the presets")
    p.set_defaults(func=run)


def run(args):
    from ms_gan import presets

    width = max(len(n) for n in presets.names())
    for name in presets.names():
        p = presets.get(name)
        print(f"{name:<{width}}  {p.channels}x{p.image_size}x{p.image_size}  {p.summary}")
    return 0
