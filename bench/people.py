"""People who look like real traffic: Hebrew and Persian names, local phone numbers, returning
people and name-only look-alikes.

Most leads are new people (a first name and a family name drawn from the lists below, in Hebrew
or Persian, an Israeli mobile number, or an Iranian one in its local form). About one lead in ten
is a returning person: the same name and phone number as an earlier lead, which the system
records as a touch on the open lead. About one in fifty is a look-alike: the name of an earlier
person with a new phone number, which the duplicate check may flag. The draws come from a seeded
generator, so two runs send the same people in the same order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

HEBREW_FIRST = (
    "נועה",
    "מאיה",
    "תמר",
    "יעל",
    "שירה",
    "אביגיל",
    "רוני",
    "מיכל",
    "הילה",
    "ליאור",
    "דוד",
    "יוסף",
    "משה",
    "אברהם",
    "יצחק",
    "אריאל",
    "איתי",
    "עומר",
    "נדב",
    "אורי",
    "רחל",
    "שרה",
    "לאה",
    "חנה",
    "אסתר",
    "דניאל",
    "יונתן",
    "גיל",
    "עידו",
    "אלון",
)
HEBREW_FAMILY = (
    "כהן",
    "לוי",
    "מזרחי",
    "פרץ",
    "ביטון",
    "דהן",
    "אברהם",
    "פרידמן",
    "אזולאי",
    "מלכה",
    "כץ",
    "יוסף",
    "חדד",
    "עמר",
    "אוחיון",
    "גבאי",
    "שפירא",
    "בן דוד",
    "רוזנברג",
    "אשכנזי",
    "ברק",
    "שטרן",
    "גולן",
    "נחום",
    "סויסה",
    "טל",
    "קליין",
    "וקנין",
    "בירנבאום",
    "זילברמן",
)
PERSIAN_FIRST = (
    "محمد",
    "علی",
    "حسین",
    "رضا",
    "مهدی",
    "امیر",
    "سعید",
    "حمید",
    "مجید",
    "بهنام",
    "فاطمه",
    "زهرا",
    "مریم",
    "سارا",
    "نرگس",
    "لیلا",
    "شیرین",
    "مینا",
    "پریسا",
    "الهام",
    "کاوه",
    "آرش",
    "داریوش",
    "نیلوفر",
    "یاسمن",
    "ستاره",
    "بهاره",
    "پوریا",
    "سپیده",
    "آزاده",
)
PERSIAN_FAMILY = (
    "محمدی",
    "حسینی",
    "احمدی",
    "رضایی",
    "کریمی",
    "موسوی",
    "جعفری",
    "صادقی",
    "رحیمی",
    "هاشمی",
    "قاسمی",
    "نوری",
    "کاظمی",
    "عباسی",
    "ابراهیمی",
    "اکبری",
    "تهرانی",
    "شیرازی",
    "اصفهانی",
    "یزدانی",
    "فرهادی",
    "نیک‌نام",
    "مرادی",
    "سلطانی",
    "بهرامی",
    "پارسا",
    "امینی",
    "زمانی",
    "خسروی",
    "طاهری",
)
SOURCES = ("radio", "tv", "website", "press", "referral", "exhibition", "telemarketing", "email")
ISRAELI_PREFIXES = ("050", "052", "053", "054", "055", "058")
IRANIAN_PREFIXES = ("0912", "0935", "0919", "0901", "0921", "0937")


@dataclass(frozen=True)
class Person:
    full_name: str
    phone_number: str
    source: str
    kind: str  # "new", "returning" or "look-alike"


@dataclass
class People:
    """An endless, reproducible stream of leads' people; `returning` and `look_alike` are shares."""

    seed: int = 16
    returning: float = 0.10
    look_alike: float = 0.02
    persian: float = 0.35
    _rng: random.Random = field(init=False)
    _seen: list[Person] = field(init=False, default_factory=list)
    _phones: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def next(self) -> Person:
        draw = self._rng.random()
        if self._seen and draw < self.returning:
            earlier = self._rng.choice(self._seen)
            return Person(earlier.full_name, earlier.phone_number, self._rng.choice(SOURCES), "returning")
        if self._seen and draw < self.returning + self.look_alike:
            earlier = self._rng.choice(self._seen)
            phone = self._phone(persian=self._is_persian(earlier))
            person = Person(earlier.full_name, phone, self._source(), "look-alike")
        else:
            persian = self._rng.random() < self.persian
            person = Person(self._name(persian), self._phone(persian), self._source(), "new")
        # Bounded: a long run keeps the last 50,000 people to come back.
        if len(self._seen) >= 50_000:
            self._seen[self._rng.randrange(len(self._seen))] = person
        else:
            self._seen.append(person)
        return person

    def next_new(self) -> Person:
        """A person never seen before (not kept for returning: a lead the bench converts)."""
        persian = self._rng.random() < self.persian
        return Person(self._name(persian), self._phone(persian), self._source(), "new")

    def _name(self, persian: bool) -> str:
        first, family = (PERSIAN_FIRST, PERSIAN_FAMILY) if persian else (HEBREW_FIRST, HEBREW_FAMILY)
        name = f"{self._rng.choice(first)} {self._rng.choice(family)}"
        if self._rng.random() < 0.15:  # a double family name or a middle name now and then
            double = self._rng.random() < 0.5
            name = f"{name}-{self._rng.choice(family)}" if double else f"{self._rng.choice(first)} {name}"
        return name

    def _phone(self, persian: bool) -> str:
        while True:
            if persian:
                prefix, middle = self._rng.choice(IRANIAN_PREFIXES), self._rng.randrange(1000)
                number = f"{prefix} {middle:03d} {self._rng.randrange(10000):04d}"
            else:
                number = f"{self._rng.choice(ISRAELI_PREFIXES)}-{self._rng.randrange(10_000_000):07d}"
            if number not in self._phones:
                self._phones.add(number)
                return number

    def _source(self) -> str:
        return self._rng.choice(SOURCES)

    @staticmethod
    def _is_persian(person: Person) -> bool:
        return person.phone_number.startswith("09")
