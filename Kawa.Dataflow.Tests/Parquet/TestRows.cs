namespace Kawa.Dataflow.Tests.Parquet;

/// <summary>Rows with extreme and special values for round trips.</summary>
internal static class TestRows
{
    internal static readonly string LongText = string.Concat(Enumerable.Repeat("long-ünïcødé-🎉-", 7000));

    public static List<AllTypes> AllTypes(int count = 40)
    {
        var rows = new List<AllTypes>
        {
            new()
            {
                Id = 0, Bool = false, SByte = sbyte.MinValue, Short = short.MinValue, Int = int.MinValue, Long = long.MinValue,
                Byte = byte.MinValue, UShort = ushort.MinValue, UInt = uint.MinValue, ULong = ulong.MinValue,
                Float = float.MinValue, Double = double.MinValue, Dec = -12345678901234567890.12345678m, Dec18 = -99999999999999.9999m,
                Dec9N = -9999999.99m, Text = "", Blob = [], Uuid = Guid.Empty, Ts = DateTime.MinValue,
                TsOffset = DateTimeOffset.MinValue, Date = DateOnly.MinValue, Time = TimeOnly.MinValue, Span = TimeSpan.FromDays(-10000),
                Color = Color.Red, LongN = long.MinValue, DoubleN = double.NegativeInfinity,
            },
            new()
            {
                Id = 1, Bool = true, SByte = sbyte.MaxValue, Short = short.MaxValue, Int = int.MaxValue, Long = long.MaxValue,
                Byte = byte.MaxValue, UShort = ushort.MaxValue, UInt = uint.MaxValue, ULong = ulong.MaxValue,
                Float = float.MaxValue, Double = double.MaxValue, Dec = 12345678901234567890.12345678m, Dec18 = 99999999999999.9999m,
                Dec9N = 9999999.99m, Text = LongText, TextN = "héllo wörld 🎉 日本語 a\0b", Blob = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(),
                Uuid = Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), Ts = DateTime.MaxValue,
                TsOffset = new DateTimeOffset(2024, 2, 29, 23, 59, 59, TimeSpan.FromHours(5)).AddTicks(1234567), Date = DateOnly.MaxValue,
                Time = TimeOnly.MaxValue, Span = TimeSpan.FromDays(10000).Add(TimeSpan.FromTicks(7)), Color = Color.Blue,
                LongN = long.MaxValue, DoubleN = double.PositiveInfinity, ColorN = Color.Green, BoolN = true,
            },
            new()
            {
                Id = 2, Float = -0.0f, Double = -0.0, DoubleN = double.NaN, Text = "zero", Dec = 0m, Dec18 = -0.0001m, Dec9N = 0.01m,
                Ts = new DateTime(1969, 12, 31, 23, 59, 59, DateTimeKind.Utc).AddTicks(9_999_995), // pre-epoch, sub-microsecond
                TsOffset = DateTimeOffset.UnixEpoch, Date = new DateOnly(1969, 12, 31), Time = new TimeOnly(12, 0, 0).Add(TimeSpan.FromTicks(19)),
                Span = TimeSpan.FromTicks(-15), Uuid = Guid.Parse("ffffffff-ffff-ffff-ffff-ffffffffffff"), UuidN = Guid.Parse("12345678-9abc-def0-1234-56789abcdef0"),
                Blob = null, TsN = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Unspecified), BoolN = false,
            },
            new()
            {
                Id = 3, Float = float.NaN, Double = double.PositiveInfinity, DoubleN = -0.0, Text = "inf", Float2 = float.Epsilon,
                Ts = new DateTime(2020, 5, 17, 10, 11, 12, DateTimeKind.Local), TsN = new DateTime(1900, 1, 1, 0, 0, 0, DateTimeKind.Utc),
                Date = DateOnly.FromDateTime(DateTime.UnixEpoch), UuidN = Guid.Empty, Dec = 0.000000000000000001m,
            },
        };

        var random = new Random(42);
        for (int i = rows.Count; i < count; i++)
        {
            bool nulls = i % 3 == 0;
            rows.Add(new AllTypes
            {
                Id = i, Bool = random.Next(2) == 1, BoolN = nulls ? null : random.Next(2) == 1,
                SByte = (sbyte)random.Next(-128, 128), Short = (short)random.Next(-32768, 32768), Int = random.Next(int.MinValue, int.MaxValue),
                Long = random.NextInt64(long.MinValue, long.MaxValue), LongN = nulls ? null : random.NextInt64(),
                Byte = (byte)random.Next(256), UShort = (ushort)random.Next(65536), UInt = (uint)random.NextInt64(0, uint.MaxValue),
                ULong = (ulong)random.NextInt64() * 2, Float = (float)(random.NextDouble() * 1000 - 500), Float2 = (float)random.NextDouble(),
                Double = random.NextDouble() * 1e9 - 5e8, DoubleN = nulls ? null : random.NextDouble(),
                Dec = Math.Round((decimal)random.NextDouble() * 1_000_000m - 500_000m, 10), Dec18 = Math.Round((decimal)random.NextDouble() * 1000m, 4),
                Dec9N = nulls ? null : Math.Round((decimal)random.NextDouble() * 100m, 2),
                Text = "text-" + (i % 7), TextN = nulls ? null : "n-" + random.Next(1000),
                Blob = nulls ? null : Enumerable.Range(0, random.Next(10)).Select(_ => (byte)random.Next(256)).ToArray(),
                Uuid = Guid.NewGuid(), UuidN = nulls ? null : Guid.NewGuid(),
                Ts = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(random.NextInt64(0, TimeSpan.TicksPerDay * 10000)),
                TsOffset = new DateTimeOffset(2010, 1, 1, 0, 0, 0, TimeSpan.FromHours(random.Next(-12, 13))).AddTicks(random.NextInt64(0, TimeSpan.TicksPerDay * 1000)),
                TsN = nulls ? null : DateTime.UnixEpoch.AddTicks(random.NextInt64(-TimeSpan.TicksPerDay * 10000, TimeSpan.TicksPerDay * 10000)),
                Date = DateOnly.FromDayNumber(random.Next(0, 3_000_000)), Time = new TimeOnly(random.NextInt64(0, TimeSpan.TicksPerDay)),
                Span = TimeSpan.FromTicks(random.NextInt64(-TimeSpan.TicksPerDay * 1000, TimeSpan.TicksPerDay * 1000)),
                Color = (Color)random.Next(3), ColorN = nulls ? null : (Color)random.Next(3),
            });
        }

        return rows;
    }

    public static List<Nested> Nested()
    {
        return
        [
            new Nested { Id = 0 },
            new Nested { Id = 1, Items = [], Counts = [], Tags = [], Single = new Inner(null, null), Names = [], Longs = [] },
            new Nested
            {
                Id = 2,
                Items = [null, new Inner(null, "no values"), new Inner([], "empty"), new Inner([null], "one null"), new Inner([1, null, 3], null)],
                Counts = new Dictionary<string, int?> { ["a"] = 1, ["b"] = null, ["c"] = int.MinValue },
                Tags = new Dictionary<string, List<string>> { ["x"] = [], ["y"] = ["p", "q"] },
                Single = new Inner([7], "s"),
                Names = ["", "ü", "🎉"],
                Longs = [long.MinValue, 0, long.MaxValue],
                Matrix = [[1, 2], null, [], [null, 5]],
            },
            new Nested { Id = 3, Items = [new Inner([int.MaxValue, int.MinValue], "x")], Names = ["solo"], Longs = null, Matrix = [] },
            new Nested { Id = 4, Items = [null], Counts = new Dictionary<string, int?> { ["only"] = null }, Names = ["a", "b"] },
        ];
    }

    /// <summary>What the reader returns for a written row: timestamps and times truncated to microseconds, UTC.</summary>
    public static AllTypes Expected(AllTypes r) => new()
    {
        Id = r.Id, Bool = r.Bool, BoolN = r.BoolN, SByte = r.SByte, Short = r.Short, Int = r.Int, Long = r.Long, LongN = r.LongN,
        Byte = r.Byte, UShort = r.UShort, UInt = r.UInt, ULong = r.ULong, Float = r.Float, Float2 = r.Float2, Double = r.Double, DoubleN = r.DoubleN,
        Dec = r.Dec, Dec18 = r.Dec18, Dec9N = r.Dec9N, Text = r.Text, TextN = r.TextN, Blob = r.Blob, Uuid = r.Uuid, UuidN = r.UuidN,
        Ts = new DateTime(DateTime.UnixEpoch.Ticks + (UnixMicros(r.Ts) * 10), DateTimeKind.Utc),
        TsOffset = new DateTimeOffset(DateTime.UnixEpoch.Ticks + (FloorDiv10(r.TsOffset.UtcTicks - DateTime.UnixEpoch.Ticks) * 10), TimeSpan.Zero),
        TsN = r.TsN is { } t ? new DateTime(DateTime.UnixEpoch.Ticks + (UnixMicros(t) * 10), DateTimeKind.Utc) : null,
        Date = r.Date, Time = new TimeOnly(r.Time.Ticks / 10 * 10), Span = TimeSpan.FromTicks(FloorDiv10(r.Span.Ticks) * 10),
        Color = r.Color, ColorN = r.ColorN,
    };

    /// <summary>Epoch microseconds by the documented rule: Local converted to UTC, Unspecified taken as UTC, floor.</summary>
    public static long UnixMicros(DateTime t)
    {
        if (t.Kind == DateTimeKind.Local)
        {
            t = t.ToUniversalTime();
        }

        return FloorDiv10(t.Ticks - DateTime.UnixEpoch.Ticks);
    }

    public static long FloorDiv10(long ticks) => (long)Math.Floor(ticks / 10.0m);
}
