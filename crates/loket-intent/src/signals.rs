//! Handoff and topic signals from a bilingual (Dutch/English) lexicon, and
//! the bits that carry a model's learned hand-off judgement.
//!
//! Lexicon signals are rules, not a model: each normalised token, and each
//! pair of adjacent tokens, is looked up in a fixed lexicon. Dutch compounds
//! are caught by stems (`bezorg*` covers `bezorgkosten`, `bezorgd`,
//! `bezorging`). The rules are deliberately transparent so an operator can
//! see which words a message contains.
//!
//! The `handoff_*` signals and [`Signals::HANDOFF_JUDGED`] are not from the
//! lexicon: a model with a hand-off head sets them (see [`crate::handoff`]),
//! so that the judgement travels wherever a score's signals do.

use std::fmt;

/// A set of signals, as bits of a `u32`. `Copy`, allocation-free.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Signals(pub u32);

macro_rules! signals {
    ($( $(#[$doc:meta])* $name:ident = $bit:expr, $label:literal; )*) => {
        impl Signals {
            $( $(#[$doc])* pub const $name: Signals = Signals(1 << $bit); )*
            /// Every signal with its name, in bit order.
            pub const ALL: &'static [(Signals, &'static str)] = &[ $( (Signals::$name, $label), )* ];
        }
    };
}

signals! {
    /// Asks about price, cost or fees.
    PRICE = 0, "price";
    /// Asks whether something is in stock or available.
    STOCK = 1, "stock";
    /// Talks about delivery, shipping or delivery time.
    DELIVERY = 2, "delivery";
    /// Talks about payment methods or paying.
    PAYMENT = 3, "payment";
    /// Refers to an order (existing or to be placed).
    ORDER = 4, "order";
    /// Compares products or options.
    COMPARISON = 5, "comparison";
    /// Doubts about size or fit.
    SIZE_DOUBT = 6, "size_doubt";
    /// Asks for a human agent.
    HUMAN_REQUEST = 7, "human_request";
    /// Complains or is angry.
    COMPLAINT = 8, "complaint";
    /// Wants to cancel an order or subscription.
    CANCEL = 9, "cancel";
    /// Return, exchange or refund.
    RETURN = 10, "return";
    /// Hesitation or doubt ("not sure", "twijfel").
    DOUBT = 11, "doubt";
    /// Discounts, coupons, sales.
    DISCOUNT = 12, "discount";
    /// Reserving, holding or booking.
    RESERVATION = 13, "reservation";
    /// Urgency ("asap", "spoed").
    URGENT = 14, "urgent";
    /// A greeting.
    GREETING = 15, "greeting";
    /// Thanks.
    THANKS = 16, "thanks";
    /// A product is broken, defective or damaged.
    DEFECT = 17, "defect";
    /// A question (the message contains `?`).
    QUESTION = 18, "question";
    /// The model's hand-off head judged doubt (not a lexicon signal).
    HANDOFF_DOUBT = 19, "handoff_doubt";
    /// The model's hand-off head judged a complaint (not a lexicon signal).
    HANDOFF_COMPLAINT = 20, "handoff_complaint";
    /// The model's hand-off head judged a request for a person (not a
    /// lexicon signal).
    HANDOFF_HUMAN = 21, "handoff_human";
}

impl Signals {
    /// No signal.
    pub const NONE: Signals = Signals(0);

    /// Set on every message a model's hand-off head judged, whatever the
    /// judgement (one of the `HANDOFF_*` kinds, or none of them). Not in
    /// [`Signals::ALL`] and not named: it says who judged, not what.
    pub const HANDOFF_JUDGED: Signals = Signals(1 << 31);

    /// Every bit a model's hand-off head may set; the rest come from the
    /// lexicon.
    pub const LEARNED: Signals = Signals(
        Signals::HANDOFF_DOUBT.0
            | Signals::HANDOFF_COMPLAINT.0
            | Signals::HANDOFF_HUMAN.0
            | Signals::HANDOFF_JUDGED.0,
    );

    /// These signals without the learned hand-off bits: what the lexicon
    /// found.
    pub fn lexicon(self) -> Signals {
        Signals(self.0 & !Signals::LEARNED.0)
    }

    /// Whether every signal of `other` is set.
    pub fn contains(self, other: Signals) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no signal is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Names of the set signals, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Signals::ALL.iter().filter(move |(s, _)| self.contains(*s)).map(|&(_, name)| name)
    }
}

impl std::ops::BitOr for Signals {
    type Output = Signals;
    fn bitor(self, rhs: Signals) -> Signals {
        Signals(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Signals {
    fn bitor_assign(&mut self, rhs: Signals) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// Signals of a normalised message (see [`crate::normalize_into`]).
pub fn detect(normalized: &str) -> Signals {
    crate::lexicon::analyse(normalized).0
}

/// Whole-token lexicon: every token listed sets its signal.
pub(crate) const TOKEN_SIGNALS: &[(Signals, &[&str])] = &[
    (Signals::QUESTION, &["?"]),
    (
        Signals::PRICE,
        &[
            "price",
            "prices",
            "pricing",
            "priced",
            "cost",
            "costs",
            "kost",
            "kosten",
            "kosts",
            "kostte",
            "duur",
            "duurder",
            "expensive",
            "cheap",
            "cheaper",
            "goedkoop",
            "goedkoper",
            "goedkoopste",
            "cheapest",
            "euro",
            "eur",
            "btw",
            "vat",
            "tarief",
            "fee",
            "fees",
            "prijzig",
        ],
    ),
    (
        Signals::STOCK,
        &[
            "stock",
            "voorraad",
            "available",
            "availability",
            "beschikbaar",
            "leverbaar",
            "uitverkocht",
            "restock",
            "instock",
            "verkrijgbaar",
        ],
    ),
    (
        Signals::DELIVERY,
        &[
            "delivery",
            "deliver",
            "shipping",
            "ship",
            "ships",
            "shipped",
            "dispatch",
            "dispatched",
            "verstuurd",
            "versturen",
            "postnl",
            "dhl",
            "dpd",
            "ups",
            "pakket",
            "package",
            "parcel",
            "courier",
            "koerier",
            "arrive",
            "arrives",
            "arrival",
        ],
    ),
    (
        Signals::PAYMENT,
        &[
            "pay",
            "paying",
            "paid",
            "payment",
            "payments",
            "ideal",
            "paypal",
            "klarna",
            "afterpay",
            "riverty",
            "creditcard",
            "visa",
            "mastercard",
            "achteraf",
            "pin",
            "pinnen",
            "contant",
            "cash",
            "tikkie",
            "bancontact",
            "installments",
            "installment",
            "gepind",
            "overmaken",
            "overgemaakt",
        ],
    ),
    (
        Signals::ORDER,
        &[
            "order",
            "orders",
            "ordered",
            "ordering",
            "purchase",
            "purchased",
            "gekocht",
            "bought",
            "tracking",
            "track",
            "ordernummer",
            "bestelnummer",
        ],
    ),
    (
        Signals::COMPARISON,
        &[
            "compare",
            "comparison",
            "verschil",
            "verschillen",
            "difference",
            "versus",
            "vs",
            "beter",
            "better",
            "beste",
        ],
    ),
    (
        Signals::SIZE_DOUBT,
        &[
            "maat",
            "maten",
            "maatje",
            "size",
            "sizes",
            "sizing",
            "fit",
            "fits",
            "past",
            "passen",
            "pasvorm",
            "maattabel",
            "xs",
            "xl",
            "xxl",
            "cm",
            "lengte",
            "length",
            "wijdte",
            "width",
        ],
    ),
    (
        Signals::HUMAN_REQUEST,
        &[
            "medewerker",
            "mens",
            "persoon",
            "human",
            "agent",
            "operator",
            "representative",
            "rep",
            "terugbellen",
            "callback",
            "collega",
            "iemand",
            "someone",
            "somebody",
            "manager",
            "supervisor",
            "leidinggevende",
        ],
    ),
    (
        Signals::COMPLAINT,
        &[
            "klacht",
            "complaint",
            "complain",
            "klagen",
            "boos",
            "angry",
            "furious",
            "schandalig",
            "belachelijk",
            "ridiculous",
            "terrible",
            "awful",
            "worst",
            "slecht",
            "slechte",
            "onacceptabel",
            "unacceptable",
            "teleurgesteld",
            "disappointed",
            "waardeloos",
            "useless",
            "ontevreden",
            "dissatisfied",
            "wtf",
            "scam",
            "oplichting",
            "oplichters",
            "_angry",
            "pathetic",
            "shocking",
            "schande",
            "horrible",
            "rubbish",
            "kut",
            "klote",
        ],
    ),
    (
        Signals::CANCEL,
        &[
            "cancel",
            "cancelled",
            "canceled",
            "cancellation",
            "cancelling",
            "annuleren",
            "annuleer",
            "geannuleerd",
            "annulering",
            "opzeggen",
            "opzeg",
            "unsubscribe",
        ],
    ),
    (
        Signals::RETURN,
        &[
            "return",
            "returns",
            "returned",
            "returning",
            "retour",
            "retourneren",
            "terugsturen",
            "ruilen",
            "omruilen",
            "exchange",
            "refund",
            "refunded",
        ],
    ),
    (
        Signals::DOUBT,
        &[
            "twijfel",
            "twijfelen",
            "doubt",
            "unsure",
            "misschien",
            "maybe",
            "perhaps",
            "hmm",
            "hm",
            "eigenlijk",
            "weetniet",
            "idk",
            "dunno",
        ],
    ),
    (
        Signals::DISCOUNT,
        &[
            "korting",
            "discount",
            "discounts",
            "coupon",
            "kortingscode",
            "aanbieding",
            "aanbiedingen",
            "sale",
            "promo",
            "voucher",
            "cadeaubon",
            "actie",
            "deal",
            "deals",
            "uitverkoop",
            "giftcard",
        ],
    ),
    (
        Signals::RESERVATION,
        &[
            "reserve",
            "reserveren",
            "reserveer",
            "gereserveerd",
            "reservation",
            "reservering",
            "hold",
            "apartleggen",
            "book",
            "booking",
            "afspraak",
            "appointment",
        ],
    ),
    (Signals::URGENT, &["asap", "spoed", "dringend", "urgent", "meteen", "immediately"]),
    (
        Signals::GREETING,
        &[
            "hoi",
            "hallo",
            "hey",
            "hi",
            "hello",
            "hoii",
            "heyy",
            "goedemorgen",
            "goedemiddag",
            "goedenavond",
            "morning",
            "yo",
        ],
    ),
    (
        Signals::THANKS,
        &[
            "bedankt",
            "dank",
            "dankje",
            "dankjewel",
            "danku",
            "thanks",
            "thank",
            "thx",
            "tnx",
            "merci",
            "ty",
            "_happy",
        ],
    ),
    (
        Signals::DEFECT,
        &[
            "kapot",
            "broken",
            "defect",
            "defective",
            "damaged",
            "beschadigd",
            "stuk",
            "scheur",
            "torn",
            "lekt",
            "leaking",
        ],
    ),
];

/// Stems for Dutch compounds and inflections.
pub(crate) fn stem_signals(t: &str) -> Signals {
    let mut s = Signals::NONE;
    if t.len() < 5 {
        return s;
    }
    if t.contains("prijs") || t.contains("prijz") || t.starts_with("kost") {
        s |= Signals::PRICE;
    }
    if t.starts_with("bezorg")
        || t.starts_with("verzend")
        || t.starts_with("levertijd")
        || t.starts_with("lever")
        || t.contains("verzending")
    {
        s |= Signals::DELIVERY;
    }
    if t.starts_with("betaal") || t.starts_with("betalen") || t.starts_with("betaling") {
        s |= Signals::PAYMENT;
    }
    if t.starts_with("bestel") || t.starts_with("besteld") {
        s |= Signals::ORDER;
    }
    if t.starts_with("vergelijk") {
        s |= Signals::COMPARISON;
    }
    if t.starts_with("annule") || t.starts_with("opzeg") {
        s |= Signals::CANCEL;
    }
    if t.starts_with("retour") || t.starts_with("terugbetal") || t.starts_with("terugstort") {
        s |= Signals::RETURN;
    }
    if t.starts_with("reserveer") || t.starts_with("reserver") {
        s |= Signals::RESERVATION;
    }
    if t.starts_with("twijfel") {
        s |= Signals::DOUBT;
    }
    if t.starts_with("korting") {
        s |= Signals::DISCOUNT;
    }
    if t.starts_with("klantenservice") || t.starts_with("medewerker") {
        s |= Signals::HUMAN_REQUEST;
    }
    if t.starts_with("voorraad") {
        s |= Signals::STOCK;
    }
    s
}

/// Pairs of adjacent tokens and the signals they set.
pub(crate) const PAIR_SIGNALS: &[(Signals, &[(&str, &str)])] = &[
    (Signals::PRICE, &[("how", "much"), ("hoeveel", "kost"), ("hoe", "duur"), ("wat", "kost")]),
    (
        Signals::STOCK,
        &[
            ("in", "stock"),
            ("op", "voorraad"),
            ("sold", "out"),
            ("weer", "binnen"),
            ("nog", "binnen"),
            ("back", "in"),
        ],
    ),
    (Signals::DELIVERY, &[("in", "huis"), ("ship", "to"), ("next", "day"), ("how", "long")]),
    (
        Signals::PAYMENT,
        &[("credit", "card"), ("apple", "pay"), ("google", "pay"), ("in", "termijnen")],
    ),
    (
        Signals(Signals::ORDER.0 | Signals::DELIVERY.0),
        &[("track", "trace"), ("mijn", "pakket"), ("my", "package"), ("my", "parcel")],
    ),
    (
        Signals::HUMAN_REQUEST,
        &[
            ("real", "person"),
            ("echt", "persoon"),
            ("echte", "persoon"),
            ("echt", "mens"),
            ("echte", "mens"),
            ("speak", "to"),
            ("talk", "to"),
            ("spreken", "?"),
            ("live", "chat"),
            ("call", "me"),
            ("bel", "me"),
            ("iemand", "spreken"),
            ("customer", "service"),
        ],
    ),
    (
        Signals::COMPLAINT,
        &[("not", "happy"), ("niet", "blij"), ("niet", "tevreden"), ("not", "acceptable")],
    ),
    (
        Signals::RETURN,
        &[("geld", "terug"), ("money", "back"), ("send", "back"), ("terug", "sturen")],
    ),
    (
        Signals::DOUBT,
        &[
            ("not", "sure"),
            ("niet", "zeker"),
            ("weet", "niet"),
            ("think", "about"),
            ("denk", "erover"),
            ("nog", "even"),
            ("no", "idea"),
            ("geen", "idee"),
        ],
    ),
    (
        Signals::SIZE_DOUBT,
        &[
            ("te", "klein"),
            ("te", "groot"),
            ("too", "small"),
            ("too", "big"),
            ("valt", "klein"),
            ("valt", "groot"),
            ("runs", "small"),
            ("runs", "large"),
            ("true", "to"),
            ("welke", "maat"),
            ("what", "size"),
        ],
    ),
    (Signals::DISCOUNT, &[("gift", "card"), ("promo", "code")]),
    (Signals::RESERVATION, &[("put", "aside"), ("apart", "leggen"), ("hold", "it")]),
    (Signals::URGENT, &[("zo", "snel"), ("right", "now")]),
    (Signals::GREETING, &[("good", "morning"), ("good", "afternoon"), ("good", "evening")]),
    (
        Signals::DEFECT,
        &[("werkt", "niet"), ("stopped", "working"), ("doesnt", "work"), ("not", "working")],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &[&str]) {
        let mut normalized = String::new();
        crate::normalize_into(text, &mut normalized);
        let got: Vec<_> = detect(&normalized).names().collect();
        for e in expect {
            assert!(got.contains(e), "{text:?}: expected {e}, got {got:?}");
        }
    }

    #[test]
    fn dutch_and_english_signals() {
        check("ik wil een medewerker spreken", &["human_request"]);
        check("can i talk to a real person", &["human_request"]);
        check("wat zijn de verzendkosten?", &["delivery", "question"]);
        check("kan ik met iDEAL betalen", &["payment"]);
        check("is deze nog op voorraad", &["stock"]);
        check("valt deze maat klein?", &["size_doubt"]);
        check("ik wil mijn bestelling annuleren", &["order", "cancel"]);
        check("dit is echt belachelijk 😡", &["complaint"]);
        check("what's the difference between the two", &["comparison"]);
        check("twijfel tussen zwart en blauw", &["doubt"]);
        check("hoeveel kost deze jas", &["price"]);
        check("waar blijft mijn pakket", &["order", "delivery"]);
    }

    #[test]
    fn names_and_bits() {
        let s = Signals::PRICE | Signals::CANCEL;
        assert_eq!(s.names().collect::<Vec<_>>(), ["price", "cancel"]);
        assert!(s.contains(Signals::PRICE));
        assert!(!s.contains(Signals::STOCK));
        assert!(Signals::NONE.is_empty());
        assert_eq!(format!("{s:?}"), r#"{"price", "cancel"}"#);
        // Bits are distinct.
        let all = Signals::ALL.iter().fold(0u32, |acc, (s, _)| {
            assert_eq!(acc & s.0, 0);
            acc | s.0
        });
        assert_eq!(all.count_ones() as usize, Signals::ALL.len());
        // The judged bit is apart from every named signal and has no name.
        assert_eq!(all & Signals::HANDOFF_JUDGED.0, 0);
        assert_eq!(Signals::HANDOFF_JUDGED.names().count(), 0);
        assert_eq!(Signals::LEARNED.names().count(), 3);
        let mixed = Signals::PRICE | Signals::LEARNED;
        assert_eq!(mixed.lexicon(), Signals::PRICE);
        // The lexicon never sets a learned bit.
        let token = TOKEN_SIGNALS.iter().map(|(s, _)| s);
        for signal in token.chain(PAIR_SIGNALS.iter().map(|(s, _)| s)) {
            assert_eq!(signal.0 & Signals::LEARNED.0, 0, "{signal:?}");
        }
    }
}
