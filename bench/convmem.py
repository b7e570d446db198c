"""A generated conversational-memory dataset: chat sessions an assistant stored about a user and the people in
their life, and questions whose answer sits in one session (the evidence).

Why generated: the public sets of this kind (LongMemEval, LoCoMo) cannot be vendored here under their terms
or fetched at run time, so this generator reproduces their shape: one memory per session; sessions of a few to
forty lines (so some run past the model's 256 tokens, as real sessions do) mixing small talk with the facts;
facts that differ only in who and what (distractors sharing every other word); small talk that mentions the
same people, places and things; questions worded differently from the memory. Three kinds of question:

- ``entity``: names the person and paraphrases the fact ("What did Ana call the new dog?" for "Ana adopted a
  beagle puppy and named it Pixel") — the name is a keyword, the rest is meaning;
- ``paraphrase``: a fact about the user with no shared rare word ("Did I complete the running race?" for
  "I finally finished the marathon in Porto") — meaning only;
- ``exact``: a rare identifier repeated verbatim ("How often is the billing-7 key rotated?") — keywords first.

Deterministic for a seed. ``generate(memories=..., questions=...)`` returns both lists.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Dataset", "Item", "Question", "generate", "memory_line"]

def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


PEOPLE = _words(
    "Ana Ben Chloe Dmitri Elena Farid Grace Hiro Ines Jonas Kemal Lena Mateo Nadia Oscar Priya Quentin Rosa Sven "
    "Tara Umar Vera Wiktor Xenia Yusuf Zoe Amara Bruno Carmen Diego Emeka Freya Gustavo Hana Ivan Jasmine Kofi "
    "Leila Marco Nora Olu Pia Rafael Sofia Tomas Uma Valentina Wei Yara Zane")
CITIES = _words(
    "Lisbon Porto Lyon Oslo Krakow Seville Tallinn Ghent Bologna Valencia Riga Bergen Nantes Graz Leeds Cork Malmo "
    "Turin Bilbao Utrecht")
MONTHS = _words("January February March April May June July August September October November December")

# (topic, memory text, question) — {p} person, {a}/{b} slot values.
ENTITY_FACTS: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("pet", "{p} adopted a {a} puppy and named it {b}.", "What did {p} call the new dog?",
     ("beagle", "corgi", "husky", "poodle", "labrador", "dachshund"),
     ("Pixel", "Biscuit", "Mango", "Pepper", "Noodle", "Clover", "Ziggy", "Maple")),
    ("move", "{p} relocated to {a} for a new job in {b}.", "Where does {p} live now?", CITIES, MONTHS),
    ("food", "{p} can't stop talking about the {a} at that little place near the station.",
     "What meal does {p} love?", ("mushroom risotto", "pad thai", "lamb tagine", "pierogi", "ramen", "paella"),
     ("",)),
    ("allergy", "{p} gets a rash after eating {a}, so we avoid it at dinners.", "What is {p} allergic to?",
     ("peanuts", "shellfish", "sesame", "kiwi", "strawberries", "gluten"), ("",)),
    ("hobby", "On weekends {p} goes {a} with a few friends.", "What does {p} do for fun on Saturdays?",
     ("bouldering", "sailing", "birdwatching", "kayaking", "salsa dancing", "trail running"), ("",)),
    ("job", "{p} was promoted to {a} at the {b} office.", "What is {p}'s job title now?",
     ("head of design", "staff engineer", "product lead", "sales director", "chief of staff"), CITIES),
    ("birthday", "{p} was born on {b} {a}, we should plan something.", "When is {p}'s birthday?",
     tuple(str(d) for d in range(1, 29)), MONTHS),
    ("car", "{p} bought a second-hand {a} last {b}.", "Which vehicle did {p} purchase?",
     ("Volvo estate", "Fiat 500", "Tesla Model 3", "Toyota Prius", "Mini Cooper", "VW camper van"), MONTHS),
    ("book", "{p} is reading {a} before bed these days.", "Which novel is on {p}'s nightstand?",
     ("Middlemarch", "Dune", "The Leopard", "Beloved", "Solaris", "Rebecca"), ("",)),
    ("trip", "{p} booked flights to {a} for the summer holidays.", "Where is {p} going on vacation?", CITIES, ("",)),
    ("drink", "{p} prefers {a} over coffee first thing in the morning.", "What does {p} drink at breakfast?",
     ("green tea", "matcha", "chai", "hot chocolate", "kombucha", "yerba mate"), ("",)),
)

# Real questions often reuse one word of what was said; half of them here do (the other half paraphrase fully).
ENTITY_ECHO = {
    "pet": "What is the name of {p}'s puppy?", "move": "Where did {p} move for the new job?",
    "food": "Which dish does {p} keep talking about?", "allergy": "What food gives {p} a rash?",
    "hobby": "Which activity does {p} do with friends?", "job": "What was {p} promoted to?",
    "birthday": "What date was {p} born?", "car": "What car did {p} buy second-hand?",
    "book": "What is {p} reading in bed?", "trip": "Where did {p} book flights to?",
    "drink": "What does {p} drink instead of coffee?",
}
USER_ECHO = (
    "How did my marathon go?", "What did my landlord agree to?", "Which phone plan did I switch to?",
    "What about my wisdom tooth?", "Which teacher am I learning with online?", "What does grandma's recipe need?",
    "What is my deposit for?", "When is the team offsite?", "What gives me migraines?",
    "What is my favourite podcast about?", "What colour will the living room be?", "What did the vet prescribe?",
    "When does my passport expire?", "Which seats do I prefer on flights?", "Where was my bike stolen?",
    "When is my pottery class?", "When did I stop eating meat?", "Where is my brother's wedding?",
    "Where is the spare house key?", "Which medical form detail must never be missed?",
)

USER_FACTS: tuple[tuple[str, str], ...] = (
    ("I finally finished the marathon in Porto in under four hours.", "Did I complete the running race?"),
    ("My landlord agreed to fix the leaking bathroom ceiling next week.",
     "Is someone going to repair the water damage in my flat?"),
    ("I switched my phone plan to the cheaper unlimited data option.", "Which mobile contract am I on now?"),
    ("The dentist said my wisdom tooth has to come out in spring.", "What did the doctor say about my teeth?"),
    ("I started learning the cello with an online teacher.", "Which musical instrument am I studying?"),
    ("My grandmother's recipe for plum dumplings needs farmer's cheese.",
     "What ingredient does grandma's dessert require?"),
    ("I am saving for a deposit on a two-bedroom apartment.", "What am I putting money aside for?"),
    ("The team offsite moved from Thursday to the following Monday.", "When is the company retreat now?"),
    ("I get migraines when I sleep less than six hours.", "What triggers my headaches?"),
    ("My favourite podcast covers the history of Byzantine emperors.",
     "What is the audio show I like about?"),
    ("I want to repaint the living room a warm terracotta colour.", "How do I plan to redecorate the lounge?"),
    ("The vet prescribed eye drops for the cat twice a day.", "What medicine does my kitten need?"),
    ("I renewed my passport, it now expires in 2036.", "Is my travel document still valid?"),
    ("I prefer aisle seats on long-haul flights.", "Where do I like to sit on a plane?"),
    ("My bike was stolen outside the library on Tuesday.", "What happened to my bicycle?"),
    ("I signed up for a pottery class on Wednesday evenings.", "What craft course am I taking midweek?"),
    ("I stopped eating meat at the start of the year.", "Am I vegetarian?"),
    ("My brother's wedding is in the mountains in late September.", "When and where does my sibling get married?"),
    ("I keep the spare house key with the neighbour downstairs.", "Who has the extra key to my home?"),
    ("I am allergic to penicillin, it must be in every medical form.", "Which antibiotic can't I take?"),
)

EXACT_FACTS: tuple[tuple[str, str], ...] = (
    ("The {a} staging API key rotates every {b} days; the vault path is secret/{a}.",
     "How often is the {a} key rotated?"),
    ("Ticket {a}-{b} tracks the flaky integration test in the payments pipeline.", "What does ticket {a}-{b} track?"),
)
SERVICES = tuple(f"{w}-{n}" for w in ("billing", "ledger", "auth", "search", "media", "notify") for n in range(1, 9))

CHATTER = (
    "{p} mentioned the weather in {c} was miserable all week.",
    "We joked with {p} about the football results on Sunday.",
    "{p} said the train to {c} was late again.",
    "Had a long call with {p} about nothing in particular.",
    "{p} sent photos from a street market in {c}.",
    "{p} asked for a podcast recommendation.",
    "{p} is thinking about getting a dog one day, maybe a {breed}.",
    "{p} said the {dish} at the new place in {c} was far too salty.",
    "{p} complained that the gym was crowded after work.",
    "We compared notes with {p} on cheap flights to {c}.",
    "{p} recommended a novel but I forgot the title.",
    "{p} is fed up with the noisy neighbours upstairs.",
    "The assistant suggested a few recipes with what was left in the fridge.",
    "I asked the assistant to summarise the news about the local elections.",
    "We talked about how fast the year is going.",
    "The assistant helped draft a polite email to the letting agency.",
    "I wondered whether to take the bus or walk to the office in the rain.",
    "The assistant explained the difference between a Roth and a traditional pension account.",
)
BREEDS = ("beagle", "corgi", "husky", "poodle", "labrador", "dachshund")
DISHES = ("mushroom risotto", "pad thai", "lamb tagine", "pierogi", "ramen", "paella")


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    title: str
    content: str


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    evidence: str
    kind: str


@dataclass(frozen=True, slots=True)
class Dataset:
    items: list[Item]
    questions: list[Question]


def _entity_items(rng: random.Random, count: int) -> list[tuple[Item, Question]]:
    out: list[tuple[Item, Question]] = []
    seen: set[tuple[str, str]] = set()
    while len(out) < count and len(seen) < len(PEOPLE) * len(ENTITY_FACTS):
        person, fact = rng.choice(PEOPLE), rng.choice(ENTITY_FACTS)
        if (person, fact[0]) in seen:
            continue
        seen.add((person, fact[0]))
        topic, text, question, a_values, b_values = fact
        question = ENTITY_ECHO[topic] if rng.random() < 0.5 else question
        content = text.format(p=person, a=rng.choice(a_values), b=rng.choice(b_values))
        key = f"e{len(out)}"
        out.append((Item(key, f"{person}: {topic}", content), Question(question.format(p=person), key, "entity")))
    return out


def _exact_items(rng: random.Random, count: int) -> list[tuple[Item, Question]]:
    out: list[tuple[Item, Question]] = []
    for i in range(count):
        text, question = EXACT_FACTS[i % len(EXACT_FACTS)]
        a = SERVICES[i % len(SERVICES)] if i % 2 == 0 else rng.choice(("OPS", "PAY", "WEB", "SRE"))
        b = str(rng.randrange(7, 400))
        key = f"x{i}"
        out.append((Item(key, "ops note", text.format(a=a, b=b)), Question(question.format(a=a, b=b), key, "exact")))
    return out


def _chatter(rng: random.Random) -> str:
    return rng.choice(CHATTER).format(p=rng.choice(PEOPLE), c=rng.choice(CITIES), breed=rng.choice(BREEDS),
                                      dish=rng.choice(DISHES))


def memory_line(rng: random.Random) -> str:
    """One remembered line of the kinds the sessions hold: small talk, a fact about someone, a fact about the user."""
    draw = rng.random()
    if draw < 0.5:
        return _chatter(rng)
    if draw < 0.9:
        _, text, _, a_values, b_values = rng.choice(ENTITY_FACTS)
        return text.format(p=rng.choice(PEOPLE), a=rng.choice(a_values), b=rng.choice(b_values))
    return rng.choice(USER_FACTS)[0]


def generate(*, memories: int, questions: int, seed: int = 7, per_turn: bool = False) -> Dataset:
    """``memories`` sessions and ``questions`` questions, each answered by exactly one session; with
    ``per_turn``, one memory per line of each session instead (the line that states the fact is the evidence),
    the shape of the long-conversation benchmarks that store each dialogue turn."""
    rng = random.Random(seed)
    n_user = min(len(USER_FACTS), max(1, questions * 3 // 10))
    n_exact = max(1, questions * 2 // 10)
    n_entity = max(1, questions - n_user - n_exact)
    # Every person gets facts of other topics too: those are the distractors of each entity question.
    facts = _entity_items(rng, max(n_entity, memories // 2))
    asked = facts[:n_entity] + _exact_items(rng, n_exact)
    asked += [(Item(f"u{i}", "", text), Question(USER_ECHO[i] if rng.random() < 0.5 else q, f"u{i}", "paraphrase"))
              for i, (text, q) in enumerate(USER_FACTS[:n_user])]
    all_facts = [item for item, _ in asked] + [item for item, _ in facts[n_entity:]]
    rng.shuffle(all_facts)
    sessions: list[list[str]] = [[] for _ in range(max(memories, 1))]
    owner: dict[str, int] = {}
    for n, fact in enumerate(all_facts):
        slot = n if n < len(sessions) else rng.randrange(len(sessions))
        sessions[slot].append(fact.content)
        owner[fact.key] = slot
    for lines in sessions:
        lines.extend(_chatter(rng) for _ in range(rng.randrange(1, 16)))
        rng.shuffle(lines)
    # Titles are unique session labels: a shared title would merge memories (the original's bulk rule), and
    # a topical title would hand the keyword path the answer.
    if per_turn:
        turns = [Item(f"s{n}.{i}", f"Chat {n:05d} line {i}", line) for n, lines in enumerate(sessions)
                 for i, line in enumerate(lines)]
        where: dict[str, str] = {}
        for fact in all_facts:  # the line of its session that holds it (identical facts: each its own line)
            n = owner[fact.key]
            taken = set(where.values())
            i = next(i for i, line in enumerate(sessions[n]) if line == fact.content and f"s{n}.{i}" not in taken)
            where[fact.key] = f"s{n}.{i}"
        return Dataset(items=turns, questions=[Question(q.text, where[q.evidence], q.kind) for _, q in asked])
    items = [Item(f"s{n}", f"Chat {n:05d}", " ".join(lines)) for n, lines in enumerate(sessions)]
    return Dataset(items=items, questions=[Question(q.text, f"s{owner[q.evidence]}", q.kind) for _, q in asked])
