#pragma warning disable CA1720 // Test models deliberately name the .NET type of each column.
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Tests.Parquet;

public enum Color
{
    Red,
    Green,
    Blue,
}

/// <summary>Every scalar type, required and nullable.</summary>
public sealed class AllTypes
{
    public int Id { get; set; }

    public bool Bool { get; set; }

    public bool? BoolN { get; set; }

    public sbyte SByte { get; set; }

    public short Short { get; set; }

    public int Int { get; set; }

    public long Long { get; set; }

    public long? LongN { get; set; }

    public byte Byte { get; set; }

    public ushort UShort { get; set; }

    public uint UInt { get; set; }

    public ulong ULong { get; set; }

    public float Float { get; set; }

    public float Float2 { get; set; }

    public double Double { get; set; }

    public double? DoubleN { get; set; }

    public decimal Dec { get; set; }

    [ParquetDecimal(18, 4)]
    public decimal Dec18 { get; set; }

    [ParquetDecimal(9, 2)]
    public decimal? Dec9N { get; set; }

    public string Text { get; set; } = "";

    public string? TextN { get; set; }

    public byte[]? Blob { get; set; }

    public Guid Uuid { get; set; }

    public Guid? UuidN { get; set; }

    public DateTime Ts { get; set; }

    public DateTimeOffset TsOffset { get; set; }

    public DateTime? TsN { get; set; }

    public DateOnly Date { get; set; }

    public TimeOnly Time { get; set; }

    public TimeSpan Span { get; set; }

    public Color Color { get; set; }

    public Color? ColorN { get; set; }
}

public sealed record Inner(List<int?>? Values, string? Label);

/// <summary>Nesting: list&lt;struct&lt;list&lt;int?&gt;&gt;&gt;, maps, nested groups; nulls and empties at every level.</summary>
public sealed record Nested
{
    public int Id { get; init; }

    public List<Inner?>? Items { get; init; }

    public Dictionary<string, int?>? Counts { get; init; }

    public Dictionary<string, List<string>>? Tags { get; init; }

    public Inner? Single { get; init; }

    public string[] Names { get; init; } = [];

    public IReadOnlyList<long>? Longs { get; init; }

    public List<List<int?>?>? Matrix { get; init; }
}
