"""Deterministic, realistic inference events for the ingestion benchmarks.

    /usr/bin/python3 bench/gen_corpus.py --bytes 100000000 --out corpus.jsonl [--seed 7]

One JSON object per line with the fields log_inference takes. Prompts and
responses are support-chat and coding-assistant prose with the numbers
such text carries (dates, times, versions, prices, order numbers, unix
timestamps, code) and about one PII item per 2 KB of text: emails, phone
numbers, SSNs, Luhn-valid card numbers, IPv4/IPv6 addresses, IBANs and API
keys/tokens. The same seed always gives the same bytes.
"""
import argparse
import json
import random
import string

WORDS = ("the a to of and in is it you that for on with this be are as your can at by not "
         "or from have an we will if but my do more all so which what when about how there "
         "account billing refund invoice order shipping password reset login error model "
         "response latency tokens quality drift deployment export dataset training prompt "
         "function variable request server client database query index cache timeout retry "
         "customer support ticket update version release feature setting profile payment "
         "subscription plan upgrade downgrade cancel address delivery tracking package "
         "please thanks help issue problem solution step first then finally also however "
         "because therefore example note important check confirm review open close").split()

CODE = [
    "def handler(event):\n    return {\"status\": 200, \"body\": event[\"id\"]}\n",
    "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }\n",
    "SELECT id, total FROM orders WHERE created_at >= '2024-03-01' LIMIT 50;\n",
    "const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' } });\n",
    "std::vector<int> v{1, 2, 3}; auto it = std::find(v.begin(), v.end(), 2);\n",
    "kubectl rollout restart deployment/api -n prod && kubectl get pods -o wide\n",
]


def luhn_complete(rng, prefix, length):
    digits = [int(c) for c in prefix]
    while len(digits) < length - 1:
        digits.append(rng.randrange(10))
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    digits.append((10 - total % 10) % 10)
    return "".join(map(str, digits))


def iban(rng):
    country, length = rng.choice([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18), ("ES", 24)])
    if country == "GB":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + \
               "".join(rng.choice(string.digits) for _ in range(14))
    elif country == "NL":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + \
               "".join(rng.choice(string.digits) for _ in range(10))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length - 4))
    rearranged = bban + country + "00"
    num = int("".join(str(int(c, 36)) for c in rearranged))
    check = 98 - num % 97
    code = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        code = " ".join(code[i:i + 4] for i in range(0, len(code), 4))
    return code


def pii(rng):
    kind = rng.randrange(10)
    if kind == 0:
        user = rng.choice(["john.doe", "maria_garcia", "k.tanaka", "support+test", "a.b"])
        return f"{user}{rng.randrange(100)}@{rng.choice(['example.com', 'mail.co.uk', 'corp.io'])}"
    if kind == 1:
        a, b, c = rng.randrange(200, 999), rng.randrange(100, 999), rng.randrange(1000, 9999)
        return rng.choice([f"{a}-{b}-{c}", f"({a}) {b}-{c}", f"+1 {a} {b} {c}", f"{a}.{b}.{c}"])
    if kind == 2:
        return f"{rng.randrange(100, 665)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
    if kind == 3:
        n = luhn_complete(rng, rng.choice(["4", "51", "37", "6011"]), 16)
        return rng.choice([n, " ".join(n[i:i + 4] for i in range(0, 16, 4)),
                           "-".join(n[i:i + 4] for i in range(0, 16, 4))])
    if kind == 4:
        return ".".join(str(rng.randrange(1, 255)) for _ in range(4))
    if kind == 5:
        return "2001:db8:" + ":".join(f"{rng.randrange(65536):x}" for _ in range(4)) + "::1"
    if kind == 6:
        return iban(rng)
    if kind == 7:
        return "sk-" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(40))
    if kind == 8:
        return "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    return "Bearer " + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(32))


def distractor(rng):
    k = rng.randrange(8)
    if k == 0:
        return f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    if k == 1:
        return f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
    if k == 2:
        return f"v{rng.randrange(5)}.{rng.randrange(20)}.{rng.randrange(50)}"
    if k == 3:
        return f"${rng.randrange(1, 500)}.{rng.randrange(100):02d}"
    if k == 4:
        return f"order #{rng.randrange(10**9, 10**10)}"
    if k == 5:
        return str(1700000000 + rng.randrange(10**7))
    if k == 6:
        return f"{rng.randrange(1, 100)}%"
    return str(rng.randrange(1, 1000))


def sentence(rng):
    n = rng.randrange(6, 18)
    words = [rng.choice(WORDS) for _ in range(n)]
    if rng.random() < 0.35:
        words.insert(rng.randrange(len(words)), distractor(rng))
    s = " ".join(words)
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!"])


class TextGen:
    def __init__(self, rng):
        self.rng = rng
        self.pool = [sentence(rng) for _ in range(4000)]
        self.since_pii = 0
        self.next_pii = rng.randrange(1500, 2600)

    def text(self, target):
        rng, parts, size = self.rng, [], 0
        while size < target:
            if rng.random() < 0.04:
                s = rng.choice(CODE)
            else:
                s = rng.choice(self.pool)
            self.since_pii += len(s) + 1
            if self.since_pii >= self.next_pii:
                words = s.split(" ")
                words.insert(rng.randrange(len(words)), pii(rng))
                s = " ".join(words)
                self.since_pii = 0
                self.next_pii = rng.randrange(1500, 2600)
            parts.append(s)
            size += len(s) + 1
        return " ".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", type=int, default=100_000_000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    gen = TextGen(rng)
    written = 0
    i = 0
    with open(a.out, "w", encoding="utf-8") as f:
        while written < a.bytes:
            i += 1
            ev = {
                "deployment_id": rng.choice(["support-bot", "code-assistant", "search"]),
                "model_version_id": rng.choice(["v1", "v2", "v3"]),
                "user_id": f"user-{rng.randrange(50000)}",
                "prompt": gen.text(rng.randrange(100, 900)),
                "response": gen.text(rng.randrange(200, 2200)),
                "latency_ms": rng.randrange(40, 3000),
                "token_count": rng.randrange(10, 800),
                "metadata": {"channel": rng.choice(["web", "api", "mobile"]), "turn": rng.randrange(1, 9)},
            }
            line = json.dumps(ev, ensure_ascii=False, separators=(",", ":")) + "\n"
            f.write(line)
            written += len(line.encode("utf-8"))


if __name__ == "__main__":
    main()
