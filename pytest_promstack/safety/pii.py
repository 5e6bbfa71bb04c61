"""PII detectors (see ``detect.py``): one function per rule, each a precompiled pattern that
runs in linear time (no nested quantifiers over overlapping classes) and a check in Python
that the pattern alone cannot make (a calendar date, a check digit, a library's validation).

Confidence follows ``findings.py``: HIGH when a checksum or a library's validation passes,
MEDIUM for a precise shape without a check (an RRN whose tail fails its check digit, a US
number in its national form), LOW for what is found but is not a person's data or is a
guess (a company's 1588 line, a private IP address, a name after ``님`` alone).
docs/safety.md ("Detectors") lists every rule and the reasons for each choice."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import re
from collections.abc import Iterator

from .findings import HIGH, LOW, MEDIUM, Detector, Finding

# --- email --------------------------------------------------------------------------------

# anchored on the "@" (a scan for a literal is fast), the local part read backwards from it
_EMAIL_DOMAIN = re.compile(r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.([A-Za-z]{2,})(?![\w-])", re.ASCII)
_EMAIL_LOCAL = re.compile(r"(?<![\w.+-])[\w.+-]+$", re.ASCII)
_FILE_SUFFIXES = {"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "css", "js"}  # icon@2x.png


def emails(text: str) -> Iterator[Finding]:
    if "@" not in text:
        return
    for m in _EMAIL_DOMAIN.finditer(text):
        local = _EMAIL_LOCAL.search(text, max(0, m.start() - 64), m.start())
        if not local or m.group(1).lower() in _FILE_SUFFIXES or re.match(r":[\w~/]", text[m.end():m.end() + 2]):
            continue  # icon@2x.png; git@github.com:owner/repo, a host of scp and ssh
        if not _in_url_userinfo(text, local.start()):
            yield Finding(local.start(), m.end(), "EMAIL", text[local.start():m.end()], HIGH, "email")


def _in_url_userinfo(text: str, at: int) -> bool:
    """``scheme://user:pass@host``: the ``pass@host`` there is a credential, not an address."""
    token = re.split(r"\s", text[max(0, at - 300):at])[-1]
    return "://" in token and "/" not in token.split("://", 1)[1]


# --- phone numbers ------------------------------------------------------------------------

# Korean numbers: mobile 010/011/016-019, Seoul 02, the 0XY areas, 070 (internet), 050X
# (personal), 080 (toll-free); national (trunk 0), parenthesised area code ("(02) 123-4567",
# and the common Korean "02)123-4567"), +82 / 82- forms.
_KR_AREA = r"1[016789]|2|[3-6][1-5]|70|50[2-8]|80"
_KR_PHONE = re.compile(
    rf"(?<![\d+.-])(?:(?:\+82[ -]?|82[ -])(?:\(0\)[ -]?)?0?(?P<i>{_KR_AREA})"
    rf"|\(0(?P<p>{_KR_AREA})\)|0(?P<c>{_KR_AREA})\)|0(?P<n>{_KR_AREA}))"
    r"(?: ?[.-] ?| )?(?P<mid>\d{3,4})(?: ?[.-] ?| )?(?P<last>\d{4})(?![\d])(?!-\d|\.\d)")
# 15XX/16XX/18XX company lines ("전국대표번호"), always written with the hyphen.
_KR_BUSINESS = re.compile(r"(?<![\d.-])(1[568]\d\d)-(\d{4})(?![\d-])")
# A number in international form outside Korea: phonenumbers parses the candidate.
_INTL = re.compile(r"(?<![A-Za-z0-9+])\+(?!82)[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d[\d .-]{4,16}\d")
# North American national form: (415) 555-2671, 415-555-2671 (area and exchange 2-9).
_NANP = re.compile(r"(?<![\d+.-])(?:\([2-9]\d\d\) ?|[2-9]\d\d[-.])[2-9]\d\d[-.]\d{4}(?![\d-])")


_NUMBER_RUN = re.compile(r"[\d+(][\d .()+–-]*")


@functools.lru_cache(maxsize=4)
def _number_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Where the number rules look: runs of digits and separators holding 4+ digits, each
    with the two characters after it that the rules look ahead at. One scan of the text
    serves every number rule (a scan costs ~20 ms per MB, and there are eight rules); the
    rules' look-behinds see the text before a run. Memoised for the few rules on one text."""
    return tuple((m.start(), min(len(text), m.end() + 2)) for m in _NUMBER_RUN.finditer(text)
                 if m.end() - m.start() >= 4 and sum(c.isdigit() for c in m.group()) >= 4)


def _numbers(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    for lo, hi in _number_spans(text):
        yield from (m for m in pattern.finditer(text, lo, hi) if not _glued(text, m.start(), m.end()))


_GLUE = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _glued(text: str, start: int, end: int) -> bool:
    """True when the digit that begins or ends ``text[start:end]`` touches an ASCII letter or
    digit: digits inside a hex digest (``513b01012345678ece9f5``), an identifier (``T01012345678``)
    or a longer number are not a number of their own. Hangul (and any other letter outside
    ASCII: Korean, Chinese and Japanese are written without spaces) is a boundary, as are
    ``_`` and punctuation: ``전화번호010-1234-5678로``, ``tel_01012345678``."""
    return ((start > 0 and text[start].isdigit() and text[start - 1] in _GLUE)
            or (end < len(text) and text[end - 1].isdigit() and text[end] in _GLUE))


def phones(text: str) -> Iterator[Finding]:
    yield from _korean_phones(text)
    yield from _business_lines(text)
    yield from _international_phones(text)
    yield from _nanp_phones(text)


def _korean_phones(text: str) -> Iterator[Finding]:
    for m in _numbers(_KR_PHONE, text):
        if (m.group("i") or m.group("p") or m.group("c") or m.group("n")) == "80":  # a company's free line
            level = LOW
        else:
            level = HIGH if _valid(m.group().replace(")", ") ", 1) if m.group("c") else m.group(), "KR") else MEDIUM
        yield Finding(m.start(), m.end(), "PHONE", m.group(), level, "phone-kr")


def _business_lines(text: str) -> Iterator[Finding]:
    for m in _numbers(_KR_BUSINESS, text):
        first, second = int(m.group(1)), int(m.group(2))
        if 1000 <= second <= 2199 and second > first:  # a span of years: 1588-1600
            continue
        yield Finding(m.start(), m.end(), "PHONE", m.group(), LOW, "phone-kr-business")


def _international_phones(text: str) -> Iterator[Finding]:
    if "+" not in text:
        return
    import phonenumbers

    for cand in _numbers(_INTL, text):
        for m in phonenumbers.PhoneNumberMatcher(cand.group(), "KR", leniency=phonenumbers.Leniency.POSSIBLE):
            if m.start == 0:  # the match that carries the + and its country code
                level = HIGH if phonenumbers.is_valid_number(m.number) else MEDIUM
                start = cand.start() + m.start
                yield Finding(start, start + len(m.raw_string), "PHONE", m.raw_string, level, "phone-intl")


def _nanp_phones(text: str) -> Iterator[Finding]:
    for m in _numbers(_NANP, text):
        if _valid(m.group(), "US"):
            yield Finding(m.start(), m.end(), "PHONE", m.group(), MEDIUM, "phone-us")


def _valid(number: str, region: str) -> bool:
    import phonenumbers

    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, region))
    except phonenumbers.NumberParseException:
        return False


# --- Korean resident (RRN) and foreigner (FRN) registration numbers -----------------------

_RRN = re.compile(r"(?<!\d)(?<!\d[-.])(\d{2})(\d{2})(\d{2})( ?[-–] ?| ?)([1-8])(\d{6})(?!\d)(?![-.]\d)")
_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def registration_numbers(text: str) -> Iterator[Finding]:
    for m in _numbers(_RRN, text):
        gender = m.group(5)
        if not _born(m.group(1), m.group(2), m.group(3), gender):
            continue
        digits = m.group(1) + m.group(2) + m.group(3) + gender + m.group(6)
        foreigner = gender in "5678"
        level = HIGH if _check_digit(digits, 13 if foreigner else 11) == digits[12] else MEDIUM
        kind = "KR_FRN" if foreigner else "KR_RRN"
        yield Finding(m.start(), m.end(), kind, m.group(), level, kind.lower())


def _born(yy: str, mm: str, dd: str, gender: str) -> bool:
    """A real birth date, in the century the gender digit names, not after today."""
    century = 1900 if gender in "1256" else 2000
    try:
        born = datetime.date(century + int(yy), int(mm), int(dd))
    except ValueError:
        return False
    return born <= datetime.date.today()


def _check_digit(digits: str, base: int) -> str:
    """RRN: (11 - sum mod 11) mod 10; FRN: (13 - sum mod 11) mod 10 (weights 2-9, 2-5)."""
    total = sum(w * int(d) for w, d in zip(_WEIGHTS, digits, strict=False))
    return str((base - total % 11) % 10)


# --- payment cards ------------------------------------------------------------------------

_CARD = re.compile(r"(?<![\d.-])(?<!\d )\d(?:[ -]?\d){12,18}(?!\d)(?!-\d)")
# (issuer, length range, prefix ranges as (low, high) over the first len(str(low)) digits)
_ISSUERS = (
    ("visa", (16, 19), ((4, 4),)),
    ("mastercard", (16, 16), ((51, 55), (2221, 2720))),
    ("amex", (15, 15), ((34, 34), (37, 37))),
    ("discover", (16, 19), ((6011, 6011), (644, 649), (65, 65))),
    ("jcb", (16, 19), ((3528, 3589),)),
    ("unionpay", (16, 19), ((62, 62),)),
    ("diners", (14, 19), ((300, 305), (3095, 3095), (36, 36), (38, 39))),
)


def cards(text: str) -> Iterator[Finding]:
    for m in _numbers(_CARD, text):
        digits = re.sub(r"[ -]", "", m.group())
        if not _grouped_like_a_card(m.group()) or not _luhn(digits):
            continue
        if _issuer(digits):
            yield Finding(m.start(), m.end(), "CREDIT_CARD", m.group(), HIGH, "card")
        elif digits[0] == "9" and len(digits) == 16 and m.group() != digits:
            # ISO 7812's national range: Korean domestic cards (BC and others), written in groups
            yield Finding(m.start(), m.end(), "CREDIT_CARD", m.group(), MEDIUM, "card-domestic")


def _grouped_like_a_card(raw: str) -> bool:
    """All digits, or one separator in groups of four (the last shorter), or 4-6-5 / 4-6-4."""
    seps = set(re.sub(r"\d", "", raw))
    if not seps:
        return True
    if len(seps) > 1:
        return False
    sizes = [len(g) for g in raw.split(seps.pop())]
    if sizes in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4 and len(sizes) >= 4


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _issuer(digits: str) -> str | None:
    for name, (shortest, longest), prefixes in _ISSUERS:
        if shortest <= len(digits) <= longest and any(
                low <= int(digits[:len(str(low))]) <= high for low, high in prefixes):
            return name
    return None


# --- IBAN ---------------------------------------------------------------------------------

_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")


def ibans(text: str) -> Iterator[Finding]:
    from stdnum import iban

    for m in _IBAN.finditer(text):
        raw = m.group()
        while len(raw.replace(" ", "")) >= 15:  # a trailing word in capitals may have joined it
            if iban.is_valid(raw):
                yield Finding(m.start(), m.start() + len(raw), "IBAN", raw, HIGH, "iban")
                break
            if " " not in raw:
                break
            raw = raw.rsplit(" ", 1)[0]


# --- US social security numbers -----------------------------------------------------------

_SSN = re.compile(r"(?<![\d-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\d-])")
_SSN_WORDS = re.compile(r"(?i)(?:\bssn|social security|사회보장번호)[^\n]{0,40}$")


def ssns(text: str) -> Iterator[Finding]:
    for m in _numbers(_SSN, text):
        area, group, serial = m.group(1), m.group(3), m.group(4)
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue
        named = bool(_SSN_WORDS.search(text, max(0, m.start() - 60), m.start()))
        if named or m.group(2) == "-":  # the word, or the dashed layout; nine bare digits need the word
            level = HIGH if named and m.group(2) else MEDIUM
            yield Finding(m.start(), m.end(), "US_SSN", m.group(), level, "ssn")


# --- IP addresses -------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![A-Za-z0-9.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![A-Za-z0-9]|\.\d)")
_IPV6 = re.compile(r"(?<![A-Za-z0-9:.])[0-9A-Fa-f:.]{2,45}(?<![.])(?![A-Za-z0-9:])")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_VERSION_WORDS = re.compile(r"(?i)(?:version|ver\.?|release|section|chapter|step|table|figure|§|버전|릴리스|절|항)\s*$")


def ip_addresses(text: str) -> Iterator[Finding]:
    for m in _numbers(_IPV4, text):
        if not _VERSION_WORDS.search(text, max(0, m.start() - 12), m.start()):
            yield from _ip(m, ipaddress.IPv4Address)
    if _IPV6_HINT.search(text):
        for m in _IPV6.finditer(text):
            value = m.group()
            if value.count(":") >= 2 and re.search(r"\d", value) and len([g for g in value.split(":") if g]) >= 2:
                yield from _ip(m, ipaddress.IPv6Address)


def _ip(m: re.Match[str], kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]) -> Iterator[Finding]:
    try:
        address = kind(m.group())
    except ValueError:
        return
    # an address that routes on the internet names a subscriber; a private, loopback or
    # documentation one names a machine inside some network
    yield Finding(m.start(), m.end(), "IP_ADDRESS", m.group(), HIGH if address.is_global else LOW, "ip")


# --- names --------------------------------------------------------------------------------

_SURNAMES = ("김이박최정강조윤장임한오서신권황안송전홍유고문양손배백허남심노하곽성차주우구민류나진지엄채원천방공"
             "현함변염여추도소석선설마길연위표명기반라왕금옥육인맹제모탁국어은편용예경봉")
_HANGUL_NAME = rf"(?:(?:남궁|황보|제갈|선우|독고|사공|서문)[가-힣]{{1,2}}|[{_SURNAMES}][가-힣]{{1,2}})"
_KO_TITLES = ("고객님|회원님|선생님|환자분|교수님|대표님|사장님|부장님|과장님|차장님|팀장님|대리님|주임님|원장님"
              "|님|씨|고객|회원|환자|귀하")
# the title ends the word, or particles do ("님께서", "고객님은"): "고객센터", "씨앗" are not titles;
# the scan looks for titles (rarer than syllables) and reads the name back from each
_KO_TITLE = re.compile(rf"(?:{_KO_TITLES})(?=[께서들은는이가의을를도과와에게으로]{{0,3}}(?![가-힣]))")
_KO_NAME_BEFORE = re.compile(rf"(?<![가-힣])({_HANGUL_NAME}) ?$")
_KO_LABELS = "성명|이름|성함|고객명|예금주|환자명|보호자명?|수취인|받는 ?분|담당자|신청인|가입자명|계약자명?"
_KO_LABELLED = re.compile(
    rf"(?:{_KO_LABELS})\s*(?:[:：]\s*({_HANGUL_NAME})(?![가-힣])"
    rf"|(?:은|는)\s+({_HANGUL_NAME}) ?(?=입니다|이고|이며|이에요|예요|이다|님|씨))")
# words that start with a surname's syllable and stand before a title word ("우리 고객님")
_NOT_NAMES = frozenset((
    "우리", "모든", "이번", "전체", "기존", "신규", "주요", "고객", "선생", "여러", "해당",
    "정기", "우수", "최고", "최우수", "방문", "구매", "문의", "예약", "상담", "장기", "한국",
    "정회원", "이용자", "신청자", "구매자", "조합원", "이사장", "소중한", "고마운", "감사한", "안녕",
    "이분", "그분", "저분", "이런", "그런", "저런", "어느", "다른", "각", "모두", "이용", "가입",
    "신청", "회원", "환자", "보호", "담당", "전담", "이전", "다음", "오늘", "내일", "이상",
    "이하", "지난", "하루", "매일", "매주", "성인", "일반", "유료", "무료", "기업", "법인",
    "개인", "단체", "남성", "여성", "나이", "연세", "고령", "노인", "어르신", "외국", "국내",
    "해외", "지역", "인근", "동네", "성명", "이름", "주신", "오신", "계신", "남은", "정말",
    "진짜", "많은", "여러분", "모든분",
))
_KO_TITLE_SYLLABLES = ("선생", "사장", "부장", "과장", "차장", "대리", "교수", "원장", "회장", "이사", "팀장", "실장",
                       "주임", "기사", "대표", "박사", "작가", "감독", "고객", "회원", "환자")
_EN_NAME = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
_EN_TITLED = re.compile(rf"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.? ({_EN_NAME})(?: ({_EN_NAME}))?")
# "Name:", "Full name:", "Customer name:", "Account holder:", "Card holder:"
_EN_LABELLED = re.compile(rf"(?i:name|holder)\s*:\s*({_EN_NAME}(?: {_EN_NAME}){{1,2}})")
_EN_NOT_NAMES = frozenset((
    "The", "And", "Or", "But", "Please", "Thank", "Thanks", "I", "We", "You", "He", "She", "They", "It", "Is",
    "Was", "Will", "Has", "Can", "Our", "Your", "His", "Her", "Their", "This", "That", "If", "When", "Then",
    "So", "President", "Speaker", "Chairman", "Secretary", "Minister", "Chair",
))


def names(text: str) -> Iterator[Finding]:
    yield from _korean_names(text)
    yield from _english_names(text)


def _korean_names(text: str) -> Iterator[Finding]:
    for m in _KO_LABELLED.finditer(text):
        group = 1 if m.group(1) else 2
        if m.group(group) not in _NOT_NAMES:
            yield Finding(m.start(group), m.end(group), "PERSON", m.group(group), MEDIUM, "name-ko-label")
    for title in _KO_TITLE.finditer(text):
        m = _KO_NAME_BEFORE.search(text, max(0, title.start() - 6), title.start())
        if not m:
            continue
        name = m.group(1)
        if name in _NOT_NAMES or name[1:] in _KO_TITLE_SYLLABLES or name[-2:] in _KO_TITLE_SYLLABLES:
            continue
        if len(name) >= 3 and name[-1] in "한는던된할":  # a modifier: "조용한 고객님"
            continue
        # a surname and a two-syllable given name before a title is a name; two syllables may be a word
        yield Finding(m.start(1), m.end(1), "PERSON", name, MEDIUM if len(name) >= 3 else LOW, "name-ko-title")


def _english_names(text: str) -> Iterator[Finding]:
    for m in _EN_LABELLED.finditer(text):
        if not _letter_before(text, m.start()):  # "username:" is no label
            yield Finding(m.start(1), m.end(1), "PERSON", m.group(1), MEDIUM, "name-en-label")
    for m in _EN_TITLED.finditer(text):
        if m.group(1) in _EN_NOT_NAMES or _letter_before(text, m.start()):
            continue
        if m.group(2) and m.group(2) not in _EN_NOT_NAMES:
            yield Finding(m.start(1), m.end(2), "PERSON", text[m.start(1):m.end(2)], MEDIUM, "name-en-title")
        else:
            yield Finding(m.start(1), m.end(1), "PERSON", m.group(1), LOW, "name-en-title")


def _letter_before(text: str, at: int) -> bool:
    return at > 0 and text[at - 1].isalpha()


# --- Korean addresses ---------------------------------------------------------------------

_PROVINCE = (r"(?:서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충청북|충청남|충북|충남|전라북|전라남|전북|전남"
             r"|경상북|경상남|경북|경남|제주)(?:특별자치시|특별자치도|특별시|광역시|도|시)?")
_DISTRICTS = r"(?:[가-힣]{1,6}[시군구] ){1,2}"
_ROAD = r"[가-힣\d]{1,12}(?:로|길)(?: ?\d{1,4}번?길)? \d{1,5}(?:-\d{1,5})?"
_LOT = r"[가-힣\d]{1,8}[동읍면리가] (?:산 ?)?\d{1,5}(?:-\d{1,5})?(?:번지)?"
_UNIT = (r"(?:,? ?\d{1,4}동 ?\d{1,5}호|,? ?\d{1,3}층|,? ?\d{1,5}호)?"  # 101동 202호, 12층
         r"(?: ?\([가-힣\d]{1,10}(?:동|가|리)?(?:, ?[가-힣\d]{1,20})?\))?")  # (역삼동)
_ADDRESS = re.compile(rf"(?<![가-힣])(?:{_PROVINCE} )?{_DISTRICTS}(?:{_ROAD}|{_LOT})(?!\d){_UNIT}")
_AREA = re.compile(rf"(?<![가-힣])(?:{_PROVINCE} [가-힣]{{1,6}}[시군구]|[가-힣]{{1,6}}[시군] [가-힣]{{1,6}}구)"
                   r" [가-힣\d]{1,8}[동읍면](?=(?:에서|에|은|는|이|의|으로|도|까지|부터|과|와)?(?![가-힣]))")


# Every address holds a district ("…시 ", "…군 ", "…구 "): the scan looks for those and reads
# each address in a window around one (within 16 characters before it, 200 after, more than
# the longest address the patterns can match), not from every Hangul syllable.
_DISTRICT_MARK = re.compile(r"[시군구] ")


def addresses(text: str) -> Iterator[Finding]:
    end = 0
    for mark in _DISTRICT_MARK.finditer(text):
        if mark.start() < end:
            continue
        lo, hi = max(end, mark.start() - 16), min(len(text), mark.end() + 200)
        found = [m for m in (_ADDRESS.search(text, lo, hi), _AREA.search(text, lo, hi)) if m]
        if found:
            m = min(found, key=lambda m: (m.start(), -m.end()))
            full = m.re is _ADDRESS  # else a neighbourhood without a house number
            yield Finding(m.start(), m.end(), "ADDRESS", m.group(), MEDIUM if full else LOW,
                          "address-kr" if full else "address-kr-area")
            end = m.end()


DETECTORS = [
    Detector("email", ("EMAIL",), emails),
    Detector("kr-registration", ("KR_RRN", "KR_FRN"), registration_numbers),
    Detector("card", ("CREDIT_CARD",), cards),
    Detector("phone", ("PHONE",), phones),
    Detector("iban", ("IBAN",), ibans),
    Detector("ssn", ("US_SSN",), ssns),
    Detector("ip", ("IP_ADDRESS",), ip_addresses),
    Detector("name", ("PERSON",), names),
    Detector("address", ("ADDRESS",), addresses),
]
