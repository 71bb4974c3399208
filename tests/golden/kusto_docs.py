"""A battery taken from the Kusto documentation: for each construct, its documented examples and rows.

Every query and every expected row here is copied from the example sections of the Kusto
documentation (MicrosoftDocs/dataexplorer-docs, ``data-explorer/kusto/query/<page>.md``), not from
the engine's output. A deprecated spelling is checked on its current name's examples, written with
the old name: the pages say the two are the same function. Examples read only ``datatable``,
``range`` and ``print``, so the tenant's data plays no part.

``refused`` examples are documented KQL the emulator does not run: they must fail with a 400 that
says so (``is valid KQL that this emulator does not run``), never answer wrongly.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

DOCS = "https://github.com/MicrosoftDocs/dataexplorer-docs/blob/main/data-explorer/kusto/query/"


@dataclass(frozen=True)
class DocExample:
    """One documented example.

    :param construct: the construct it shows, in KQL terms.
    :param page: the documentation page (under :data:`DOCS`).
    :param kql: the query, as documented.
    :param columns: the documented column names, in order.
    :param rows: the documented rows (JSON values as the hunting API returns them).
    :param ordered: the rows' order is part of the answer.
    :param set_columns: columns holding arrays whose element order Kusto leaves undefined.
    :param refused: the text the 400 must contain, for documented KQL the emulator does not run.
    """

    construct: str
    page: str
    kql: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    ordered: bool = False
    set_columns: tuple[str, ...] = ()
    refused: str | None = None

    @property
    def id(self) -> str:
        return f"{self.construct}:{self.page}:{zlib.crc32(self.kql.encode()) % 10_000:04d}"


_SHAPES = """let shapes = datatable (name: string, sideCount: int)
[
    "triangle", 3,
    "square", 4,
    "rectangle", 4,
    "pentagon", 5,
    "hexagon", 6,
    "heptagon", 7,
    "octagon", 8,
    "nonagon", 9,
    "decagon", 10
];
shapes
"""

_SERIES = """let data=datatable(timestamp:datetime, metric: real)
[
  datetime(2016-12-31T06:00), 50,
  datetime(2017-01-01), 4,
  datetime(2017-01-02), 3,
  datetime(2017-01-03), 4,
  datetime(2017-01-03T03:00), 6,
  datetime(2017-01-05), 8,
  datetime(2017-01-05T13:40), 13,
  datetime(2017-01-06), 4,
  datetime(2017-01-07), 3,
  datetime(2017-01-08), 8,
  datetime(2017-01-08T21:00), 8,
  datetime(2017-01-09), 2,
  datetime(2017-01-09T12:00), 11,
  datetime(2017-01-10T05:00), 5,
];
let interval = 1d;
let stime = datetime(2017-01-01);
let etime = datetime(2017-01-10);
data
"""

_DAYS = [f"2017-01-0{day}T00:00:00.0000000Z" for day in range(1, 10)]

_BAG = """datatable(d:dynamic)
[
    dynamic({"Name": "John", "Age":20}),
    dynamic({"Name": "Dave", "Age":40}),
    dynamic({"Name": "Jasmine", "Age":30}),
]
"""

_CONFLICT = """datatable(Name:string, d:dynamic)
[
    'Old_name', dynamic({"Name": "John", "Age":20}),
    'Old_name', dynamic({"Name": "Dave", "Age":40}),
    'Old_name', dynamic({"Name": "Jasmine", "Age":30}),
]
"""

_NOT_RUN = "is valid KQL that this emulator does not run"

EXAMPLES: list[DocExample] = [
    # project-reorder
    DocExample(
        "project-reorder",
        "project-reorder-operator.md",
        "print a='a', b='b', c='c'\n| project-reorder b",
        ["b", "a", "c"],
        [["b", "a", "c"]],
    ),
    DocExample(
        "project-reorder",
        "project-reorder-operator.md",
        "print b = 'b', a2='a2', a3='a3', a1='a1'\n| project-reorder a* asc",
        ["a1", "a2", "a3", "b"],
        [["a1", "a2", "a3", "b"]],
        refused=f"'project-reorder ... asc/desc' at line 2, column 3 {_NOT_RUN}",
    ),
    # make-series
    DocExample(
        "make-series",
        "make-series-operator.md",
        _SERIES + "| make-series avg(metric) on timestamp from stime to etime step interval ",
        ["avg_metric", "timestamp"],
        [[[4.0, 3.0, 5.0, 0.0, 10.5, 4.0, 3.0, 8.0, 6.5], _DAYS]],
    ),
    DocExample(
        "make-series",
        "make-series-operator.md",
        _SERIES
        + "| take 0\n| make-series avg(metric) default=1.0 on timestamp from stime to etime step interval \n| count ",
        ["Count"],
        [[0]],
    ),
    DocExample(
        "make-series",
        "make-series-operator.md",
        _SERIES
        + "| take 0\n| make-series kind=nonempty avg(metric) default=1.0 on timestamp from stime to etime step interval ",
        ["avg_metric", "timestamp"],
        [[[1.0] * 9, _DAYS]],
    ),
    # evaluate bag_unpack
    DocExample(
        "evaluate bag_unpack",
        "bag-unpack-plugin.md",
        _BAG + "| evaluate bag_unpack(d)",
        ["Age", "Name"],
        [[20, "John"], [40, "Dave"], [30, "Jasmine"]],
    ),
    DocExample(
        "evaluate bag_unpack",
        "bag-unpack-plugin.md",
        _BAG + "| evaluate bag_unpack(d, 'Property_')",
        ["Property_Age", "Property_Name"],
        [[20, "John"], [40, "Dave"], [30, "Jasmine"]],
    ),
    DocExample(
        "evaluate bag_unpack",
        "bag-unpack-plugin.md",
        """datatable(d:dynamic)
[
    dynamic({"Name": "John", "Age":20, "Address": "Address-1" }),
    dynamic({"Name": "Dave", "Age":40, "Address": "Address-2"}),
    dynamic({"Name": "Jasmine", "Age":30, "Address": "Address-3"}),
]
// Ignore 'Age' and 'Address' properties
| evaluate bag_unpack(d, ignoredProperties=dynamic(['Address', 'Age']))""",
        ["Name"],
        [["John"], ["Dave"], ["Jasmine"]],
    ),
    DocExample(
        "evaluate bag_unpack",
        "bag-unpack-plugin.md",
        """datatable(d:dynamic)
[
    dynamic({"Name": "John", "Age":20}),
    dynamic({ "Name": "Dave", "Height": 170, "Age":40}),
    dynamic({"Name": "Jasmine", "Age":30}),
]
| evaluate bag_unpack(d)""",
        ["Age", "Height", "Name"],
        [[20, None, "John"], [40, 170, "Dave"], [30, None, "Jasmine"]],
    ),
    DocExample(
        "evaluate bag_unpack",
        "bag-unpack-plugin.md",
        _CONFLICT + "| evaluate bag_unpack(d, columnsConflict='replace_source') // Use new name",
        ["Age", "Name"],
        [[20, "John"], [40, "Dave"], [30, "Jasmine"]],
        refused=f"'evaluate bag_unpack' at line 7, column 3 {_NOT_RUN}",
    ),
    DocExample(
        "evaluate bag_unpack",
        "bag-unpack-plugin.md",
        _CONFLICT + "| evaluate bag_unpack(d, columnsConflict='keep_source') // Keep old name",
        ["Age", "Name"],
        [[20, "Old_name"], [40, "Old_name"], [30, "Old_name"]],
        refused=f"'evaluate bag_unpack' at line 7, column 3 {_NOT_RUN}",
    ),
    # let functions with a tabular body
    DocExample(
        "tabular let function",
        "let-statement.md",
        "let MyFilter = (T:(x:long), v:long) {\n  T | where x >= v\n};\nMyFilter((range x from 1 to 10 step 1), 9)",
        ["x"],
        [[9], [10]],
    ),
    DocExample(
        "tabular let function",
        "let-statement.md",
        "let MyDistinct = (T:(*)) {\n  T | distinct *\n};\nMyDistinct((range x from 1 to 3 step 1))",
        ["x"],
        [[1], [2], [3]],
        refused=f"'distinct' at line 2, column 7 {_NOT_RUN}",
    ),
    # deprecated spellings, on their current name's examples
    DocExample(
        "makelist()",
        "make-list-aggregation-function.md",
        _SHAPES + "| summarize mylist = makelist(name)",
        ["mylist"],
        [
            [
                [
                    "triangle",
                    "square",
                    "rectangle",
                    "pentagon",
                    "hexagon",
                    "heptagon",
                    "octagon",
                    "nonagon",
                    "decagon",
                ]
            ]
        ],
    ),
    DocExample(
        "makelist()",
        "make-list-aggregation-function.md",
        _SHAPES + "| summarize mylist = makelist(name) by isEvenSideCount = sideCount % 2 == 0",
        ["isEvenSideCount", "mylist"],
        [
            [False, ["triangle", "pentagon", "heptagon", "nonagon"]],
            [True, ["square", "rectangle", "hexagon", "octagon", "decagon"]],
        ],
    ),
    DocExample(
        "makelist()",
        "make-list-aggregation-function.md",
        _SHAPES
        + '| extend d = bag_pack("name", name, "sideCount", sideCount)\n'
        + "| summarize mylist = makelist(d) by isEvenSideCount = sideCount % 2 == 0",
        ["isEvenSideCount", "mylist"],
        [
            [
                False,
                [
                    {"name": "triangle", "sideCount": 3},
                    {"name": "pentagon", "sideCount": 5},
                    {"name": "heptagon", "sideCount": 7},
                    {"name": "nonagon", "sideCount": 9},
                ],
            ],
            [
                True,
                [
                    {"name": "square", "sideCount": 4},
                    {"name": "rectangle", "sideCount": 4},
                    {"name": "hexagon", "sideCount": 6},
                    {"name": "octagon", "sideCount": 8},
                    {"name": "decagon", "sideCount": 10},
                ],
            ],
        ],
    ),
    DocExample(
        "makeset()",
        "make-set-aggregation-function.md",
        """datatable (Val: int, Arr1: dynamic)
[
    1, dynamic(['A1', 'A2', 'A3']),
    5, dynamic(['A2', 'C1']),
    7, dynamic(['C2', 'A3']),
    5, dynamic(['C2', 'A1'])
]
| summarize Val_set=makeset(Val), Arr1_set=makeset(Arr1)""",
        ["Val_set", "Arr1_set"],
        [[[1, 5, 7], ["A1", "A2", "A3", "C1", "C2"]]],
        set_columns=("Val_set", "Arr1_set"),
    ),
    DocExample(
        "parsejson()",
        "parse-json-function.md",
        """datatable(context_custom_metrics:string)
[
    '{"duration":{"value":118.0,"count":5.0,"min":100.0,"max":150.0,"stdDev":0.0,"sampledValue":118.0,"sum":118.0}}'
]
| extend d = parsejson(context_custom_metrics)
| extend duration_value = d.duration.value, duration_min = d.duration.min""",
        ["context_custom_metrics", "d", "duration_value", "duration_min"],
        [
            [
                '{"duration":{"value":118.0,"count":5.0,"min":100.0,"max":150.0,"stdDev":0.0,"sampledValue":118.0,"sum":118.0}}',
                {
                    "duration": {
                        "value": 118,
                        "count": 5,
                        "min": 100,
                        "max": 150,
                        "stdDev": 0,
                        "sampledValue": 118,
                        "sum": 118,
                    }
                },
                118,
                100,
            ]
        ],
    ),
    DocExample(
        "toobject()",
        "parse-json-function.md",
        'let d=\'{"a":123, "b":"{\\\\"c\\\\":456}"}\';\nprint d_b_c=toobject(tostring(toobject(d).b)).c',
        ["d_b_c"],
        [[456]],
    ),
    DocExample(
        "extractjson()",
        "extract-json-function.md",
        'let json = \'{"name": "John", "age": 30, "city": "New York"}\';\n'
        'print extractjson("$.name", json, typeof(string));',
        ["print_0"],
        [["John"]],
    ),
    DocExample(
        "extract_json()",
        "extract-json-function.md",
        'let json = \'{"name": "John", "age": 30, "city": "New York"}\';\n'
        'print extract_json("$.name", json, typeof(string));',
        ["print_0"],
        [["John"]],
    ),
    # typeof() as an argument
    DocExample(
        "typeof() argument",
        "extract-function.md",
        """let Dates = datatable(DateString: string)
[
    "15-12-2024",
    "21-07-2023",
    "10-03-2022"
];
Dates
| extend Month = extract(@"-(\\d{2})-", 1, DateString, typeof(int))
| project DateString, Month""",
        ["DateString", "Month"],
        [["15-12-2024", 12], ["21-07-2023", 7], ["10-03-2022", 3]],
    ),
    # between
    DocExample(
        "between",
        "between-operator.md",
        "range x from 1 to 100 step 1\n| where x between (50 .. 55)",
        ["x"],
        [[50], [51], [52], [53], [54], [55]],
    ),
    # hash()
    DocExample(
        "hash()",
        "hash-function.md",
        'print result=hash("World")',
        ["result"],
        [[1846988464401551951]],
    ),
    DocExample(
        "hash()",
        "hash-function.md",
        'print result=hash("World", 100)',
        ["result"],
        [[51]],
    ),
    DocExample(
        "hash()",
        "hash-function.md",
        'print result=hash(datetime("2015-01-01"))',
        ["result"],
        [[1380966698541616202]],
    ),
]


def constructs() -> list[str]:
    return sorted({example.construct for example in EXAMPLES})
