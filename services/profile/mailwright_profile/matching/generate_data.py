"""Word lists for the test-record generator: names, places, streets, email domains.

Lists are ordered roughly from common to rare; the generator draws from them with
Zipf-like weights, so ``Smith`` is frequent and ``Wiśniewski`` rare, as in real files.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMPANY_DOMAINS",
    "COUNTRIES",
    "FIRST_NAMES",
    "LAST_NAMES",
    "CountryData",
]

FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
    "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Christopher", "Karen", "Charles", "Lisa", "Daniel", "Nancy",
    "Matthew", "Margaret", "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Kimberly",
    "Andrew", "Emily", "Joshua", "Donna", "Kenneth", "Michelle", "Kevin", "Carol",
    "Brian", "Amanda", "Timothy", "Melissa", "Ronald", "Deborah", "Jason", "Stephanie",
    "Jeffrey", "Rebecca", "Ryan", "Sharon", "Jacob", "Laura", "Gary", "Cynthia",
    "Nicholas", "Kathleen", "Eric", "Amy", "Jonathan", "Angela", "Samuel", "Samantha",
    "Alexander", "Alexandra", "Benjamin", "Catherine", "Frederick", "Victoria",
    "Theodore", "Josephine", "Edward", "Katherine", "Gregory", "Christina", "Zachary",
    "Abigail", "Olivia", "Isabella", "Gabriel", "Eleanor", "Lawrence", "Judith",
    "Mohammed", "Fatima", "Aisha", "Omar", "Yusuf", "Layla", "Hassan", "Amira",
    "Wei", "Mei", "Jian", "Xiu", "Hiroshi", "Yuki", "Haruto", "Sakura", "Min-jun",
    "Seo-yeon", "Ji-ho", "Priya", "Arjun", "Ananya", "Rahul", "Deepika", "Vikram",
    "Aarav", "Kavya", "José", "María", "Sofía", "Alejandro", "Valentina", "Mateo",
    "Camila", "Diego", "Lucía", "Javier", "Ximena", "Joaquín", "Kwame", "Ama",
    "Chinedu", "Ngozi", "Oluwaseun", "Adaeze", "Kofi", "Abena", "Thabo", "Zanele",
    "François", "Amélie", "Léa", "Hélène", "Étienne", "Chloé", "Jörg", "Jürgen",
    "Björn", "Søren", "Åsa", "Zoë", "Siobhan", "Niamh", "Aoife", "Ciarán", "Seán",
    "Dmitri", "Natalia", "Olga", "Ivan", "Katarzyna", "Piotr", "Małgorzata",
    "Giuseppe", "Giulia", "Francesca", "Lorenzo", "Matteo", "Nguyen", "Linh", "Thanh",
    "Tuan", "Anh", "Ayşe", "Mehmet", "Emre", "Elif", "Noa", "Yael", "Avi",
    "Leilani", "Kai", "Malia", "Tane", "Aroha", "Freya", "Astrid", "Lars", "Ingrid",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson",
    "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
    "Carter", "Roberts", "Kim", "Patel", "Singh", "Chen", "Wang", "Li", "Zhang", "Liu",
    "Kumar", "Shah", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer",
    "Wagner", "Becker", "Schulz", "Hoffmann", "Dubois", "Bernard", "Moreau", "Laurent",
    "Lefèvre", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Kowalski",
    "Nowak", "Wiśniewski", "O'Brien", "O'Connor", "Murphy", "Kelly", "Byrne", "Walsh",
    "Okafor", "Adeyemi", "Mensah", "Diallo", "Nakamura", "Tanaka", "Suzuki", "Sato",
    "Yamamoto", "Park", "Choi", "Jung", "Ivanov", "Petrov", "Novak", "Horvat",
    "Jensen", "Nielsen", "Hansen", "Andersson", "Johansson", "Eriksson", "Larsen",
    "van der Berg", "de Vries", "Jansen", "Bakker", "Silva", "Santos", "Oliveira",
    "Costa", "Pereira", "Haddad", "Khalil", "Nasser", "Cohen", "Levi", "Friedman",
    "Goldberg", "Ali", "Khan", "Ahmed", "Hussain", "Rahman", "Chowdhury", "Gupta",
    "Sharma", "Reddy", "Iyer", "Nair", "Mehta", "Joshi", "Tran", "Pham", "Le", "Hoang",
    "Vu", "Dang", "Yilmaz", "Kaya", "Demir", "Şahin", "Çelik", "Papadopoulos",
    "Georgiou", "Nikolaidis", "Cruz", "Morales", "Ortiz", "Gutierrez", "Chavez",
    "Ramos", "Ruiz", "Alvarez", "Mendoza", "Castillo", "Jimenez", "Moreno", "Romero",
    "Herrera", "Medina", "Aguilar", "Vargas", "Castro", "Fernández", "Núñez", "Peña",
    "Stewart", "Morris", "Rogers", "Reed", "Cook", "Morgan", "Bell", "Cooper",
    "Richardson", "Cox", "Howard", "Ward", "Peterson", "Gray", "James", "Watson",
    "Brooks", "Kennedy", "Sanders", "Price", "Bennett", "Wood", "Barnes", "Ross",
    "Henderson", "Coleman", "Jenkins", "Perry", "Powell", "Long", "Patterson", "Hughes",
    "Washington", "Butler", "Simmons", "Foster", "Bryant", "Alexander", "Russell",
    "Griffin", "Hayes", "Myers", "Ford", "Hamilton", "Graham", "Sullivan", "Wallace",
    "Woods", "Cole", "West", "Jordan", "Owens", "Reynolds", "Fisher", "Ellis",
    "Harrison", "Gibson", "McDonald", "Marshall", "Wells", "Tucker", "Porter", "Hunter",
    "Hicks", "Crawford", "Henry", "Boyd", "Mason", "Kennedy-Lowe", "Fitzgerald",
    "MacLeod", "Abernathy", "Blackwood", "Castellanos", "Delacroix", "Eastwood",
    "Fairbanks", "Galloway", "Hargreaves", "Ingleby", "Jablonski", "Kaczmarek",
    "Lindqvist", "Montgomery", "Nakashima", "Oyelaran", "Pemberton", "Quintero",
    "Rasmussen", "Szymański", "Thorvaldsen", "Underwood", "Villanueva", "Wojciechowski",
    "Xiong", "Yamaguchi", "Zielinski", "Achterberg", "Balasubramanian", "Chakraborty",
)  # fmt: skip

COMPANY_DOMAINS: tuple[str, ...] = (
    "acme.com", "globex.com", "initech.com", "umbrella-corp.com", "hooli.com",
    "northwind.co", "contoso.com", "fabrikam.com", "wayne-ent.com", "stark-ind.com",
    "tyrell.io", "cyberdyne.net", "soylent.org", "vandelay.com", "piedpiper.io",
)  # fmt: skip


@dataclass(frozen=True)
class CountryData:
    """What addresses, phones and emails look like in one country."""

    code: str
    names: tuple[str, ...]  # how sources write the country
    weight: float
    # (city, region as a code, region as a name, postal prefix)
    cities: tuple[tuple[str, str, str, str], ...]
    streets: tuple[str, ...]
    street_types: tuple[tuple[str, str], ...]  # (long form, short form)
    address_pattern: str  # with {number}, {street} and {type}
    email_domains: tuple[str, ...]
    day_first: bool


COUNTRIES: tuple[CountryData, ...] = (
    CountryData(
        code="US",
        names=("US", "USA", "United States", "United States of America", "us"),
        weight=0.6,
        cities=(
            ("New York", "NY", "New York", "100"), ("Los Angeles", "CA", "California", "900"),
            ("Chicago", "IL", "Illinois", "606"), ("Houston", "TX", "Texas", "770"),
            ("Phoenix", "AZ", "Arizona", "850"), ("Philadelphia", "PA", "Pennsylvania", "191"),
            ("San Antonio", "TX", "Texas", "782"), ("San Diego", "CA", "California", "921"),
            ("Dallas", "TX", "Texas", "752"), ("Austin", "TX", "Texas", "787"),
            ("San Jose", "CA", "California", "951"), ("Jacksonville", "FL", "Florida", "322"),
            ("Columbus", "OH", "Ohio", "432"), ("Charlotte", "NC", "North Carolina", "282"),
            ("Seattle", "WA", "Washington", "981"), ("Denver", "CO", "Colorado", "802"),
            ("Boston", "MA", "Massachusetts", "021"), ("Portland", "OR", "Oregon", "972"),
            ("Atlanta", "GA", "Georgia", "303"), ("Miami", "FL", "Florida", "331"),
            ("Minneapolis", "MN", "Minnesota", "554"), ("St. Louis", "MO", "Missouri", "631"),
            ("Pittsburgh", "PA", "Pennsylvania", "152"), ("Nashville", "TN", "Tennessee", "372"),
        ),
        streets=(
            "Main", "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill",
            "Park", "Walnut", "Sunset", "Lincoln", "Jackson", "Church", "Highland",
            "Franklin", "Madison", "Jefferson", "Ridge", "Spring", "Chestnut", "Willow",
            "Meadow", "River", "Forest", "Center", "Mill", "Union", "Prospect",
        ),
        street_types=(
            ("Street", "St"), ("Avenue", "Ave"), ("Road", "Rd"), ("Drive", "Dr"),
            ("Lane", "Ln"), ("Boulevard", "Blvd"), ("Court", "Ct"), ("Place", "Pl"),
        ),
        address_pattern="{number} {street} {type}",
        email_domains=(
            "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com",
        ),
        day_first=False,
    ),
    CountryData(
        code="GB",
        names=("GB", "UK", "United Kingdom", "Great Britain", "GBR"),
        weight=0.15,
        cities=(
            ("London", "ENG", "England", "SW"), ("London", "ENG", "England", "N"),
            ("Manchester", "ENG", "England", "M"), ("Birmingham", "ENG", "England", "B"),
            ("Leeds", "ENG", "England", "LS"), ("Glasgow", "SCT", "Scotland", "G"),
            ("Bristol", "ENG", "England", "BS"), ("Edinburgh", "SCT", "Scotland", "EH"),
            ("Liverpool", "ENG", "England", "L"), ("Cardiff", "WLS", "Wales", "CF"),
        ),
        streets=(
            "High", "Station", "Church", "Victoria", "Green", "Manor", "Park", "Queens",
            "Kings", "Mill", "Grange", "Windsor", "York", "Albert", "Springfield",
        ),
        street_types=(
            ("Street", "St"), ("Road", "Rd"), ("Lane", "Ln"), ("Avenue", "Ave"), ("Close", "Cl"),
        ),
        address_pattern="{number} {street} {type}",
        email_domains=(
            "gmail.com", "btinternet.com", "yahoo.co.uk", "hotmail.co.uk", "outlook.com",
        ),
        day_first=True,
    ),
    CountryData(
        code="DE",
        names=("DE", "Germany", "Deutschland", "DEU"),
        weight=0.13,
        cities=(
            ("Berlin", "BE", "Berlin", "10"), ("Hamburg", "HH", "Hamburg", "20"),
            ("München", "BY", "Bayern", "80"), ("Köln", "NW", "Nordrhein-Westfalen", "50"),
            ("Frankfurt am Main", "HE", "Hessen", "60"),
            ("Stuttgart", "BW", "Baden-Württemberg", "70"),
            ("Düsseldorf", "NW", "Nordrhein-Westfalen", "40"), ("Leipzig", "SN", "Sachsen", "04"),
        ),
        streets=(
            "Haupt", "Schul", "Garten", "Bahnhof", "Dorf", "Berg", "Linden", "Kirch",
            "Wald", "Ring", "Goethe", "Schiller", "Mozart", "Birken", "Wiesen",
        ),
        street_types=(("straße", "str."), ("weg", "weg"), ("allee", "allee")),
        address_pattern="{street}{type} {number}",
        email_domains=("gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.de"),
        day_first=True,
    ),
    CountryData(
        code="FR",
        names=("FR", "France", "FRA", "france"),
        weight=0.12,
        cities=(
            ("Paris", "IDF", "Île-de-France", "750"),
            ("Marseille", "PAC", "Provence-Alpes-Côte d'Azur", "130"),
            ("Lyon", "ARA", "Auvergne-Rhône-Alpes", "690"), ("Toulouse", "OCC", "Occitanie", "310"),
            ("Nice", "PAC", "Provence-Alpes-Côte d'Azur", "060"),
            ("Nantes", "PDL", "Pays de la Loire", "440"),
            ("Bordeaux", "NAQ", "Nouvelle-Aquitaine", "330"),
            ("Lille", "HDF", "Hauts-de-France", "590"),
        ),
        streets=(
            "de la Paix", "Victor Hugo", "de la République", "Jean Jaurès", "du Moulin",
            "des Lilas", "Pasteur", "de l'Église", "Voltaire", "du Général de Gaulle",
        ),
        street_types=(("rue", "r."), ("avenue", "av."), ("boulevard", "bd")),
        address_pattern="{number} {type} {street}",
        email_domains=("gmail.com", "orange.fr", "free.fr", "laposte.net", "sfr.fr", "yahoo.fr"),
        day_first=True,
    ),
)  # fmt: skip
