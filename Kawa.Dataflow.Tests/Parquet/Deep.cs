using System.Collections;
using System.Reflection;

namespace Kawa.Dataflow.Tests.Parquet;

/// <summary>Deep equality for round-trip checks: doubles and floats bit for bit, DateTime by ticks and kind.</summary>
internal static class Deep
{
    public static void AssertEqual(object? expected, object? actual, string path = "row")
    {
        var problem = Compare(expected, actual, path);
        Assert.That(problem, Is.Null, problem);
    }

    private static string? Compare(object? e, object? a, string path)
    {
        if (e is null || a is null)
        {
            return e is null && a is null ? null : $"{path}: expected {Show(e)}, got {Show(a)}";
        }

        switch (e)
        {
            case double d:
                return a is double ad && BitConverter.DoubleToInt64Bits(d) == BitConverter.DoubleToInt64Bits(ad) ? null : $"{path}: expected {d:R}, got {Show(a)}";
            case float f:
                return a is float af && BitConverter.SingleToInt32Bits(f) == BitConverter.SingleToInt32Bits(af) ? null : $"{path}: expected {f:R}, got {Show(a)}";
            case DateTime dt:
                return a is DateTime adt && dt.Ticks == adt.Ticks && dt.Kind == adt.Kind ? null : $"{path}: expected {dt:O} ({dt.Kind}), got {Show(a)}";
            case DateTimeOffset dto:
                return a is DateTimeOffset adto && dto.UtcTicks == adto.UtcTicks ? null : $"{path}: expected {dto:O}, got {Show(a)}";
            case byte[] b:
                return a is byte[] ab && b.AsSpan().SequenceEqual(ab) ? null : $"{path}: byte arrays differ";
            case string or decimal or Guid or DateOnly or TimeOnly or TimeSpan or bool or Enum:
            case sbyte or short or int or long or byte or ushort or uint or ulong:
                return e.Equals(a) ? null : $"{path}: expected {Show(e)}, got {Show(a)}";
            case IDictionary ed:
                {
                    if (a is not IDictionary ad2 || ad2.Count != ed.Count) return $"{path}: dictionaries differ in size";
                    foreach (DictionaryEntry kv in ed)
                    {
                        if (!ad2.Contains(kv.Key)) return $"{path}: missing key {kv.Key}";
                        var p = Compare(kv.Value, ad2[kv.Key], $"{path}[{kv.Key}]");
                        if (p is not null) return p;
                    }

                    return null;
                }

            case IEnumerable ee:
                {
                    if (a is not IEnumerable ae) return $"{path}: expected a sequence";
                    var el = ee.Cast<object?>().ToList();
                    var al = ae.Cast<object?>().ToList();
                    if (el.Count != al.Count) return $"{path}: expected {el.Count} items, got {al.Count}";
                    for (int i = 0; i < el.Count; i++)
                    {
                        var p = Compare(el[i], al[i], $"{path}[{i}]");
                        if (p is not null) return p;
                    }

                    return null;
                }
        }

        foreach (var prop in e.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (prop.GetIndexParameters().Length > 0 || prop.Name == "EqualityContract") continue;
            var p = Compare(prop.GetValue(e), prop.GetValue(a), $"{path}.{prop.Name}");
            if (p is not null) return p;
        }

        return null;
    }

    private static string Show(object? o) => o switch
    {
        null => "null",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        DateTime dt => $"{dt:O} ({dt.Kind})",
        string s when s.Length > 60 => $"\"{s[..60]}…\" ({s.Length} chars)",
        string s => $"\"{s}\"",
        _ => $"{o} ({o.GetType().Name})",
    };
}
