using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>
/// Binds an <see cref="IConfiguration"/> tree to the options classes, reporting every unknown key (at any depth, with a
/// did-you-mean), every value of the wrong type and every unknown <c>type</c> discriminator, with its path.
/// </summary>
/// <remarks>
/// The stock <c>ConfigurationBinder</c> stops at the first conversion error, ignores unknown keys and cannot pick a
/// class from a <c>type</c> key; this reader walks the tree against the options types by reflection instead. A value
/// that fails to convert leaves the property's default in place, so the semantic checks that follow still run.
/// Keys match property names case-insensitively (environment variables are upper case).
/// </remarks>
internal sealed class ConfigReader(ConfigErrors errors)
{
    private readonly ConfigErrors _errors = errors;

    /// <summary>Reads the whole configuration.</summary>
    public KawaOptions Read(IConfiguration root)
    {
        var options = new KawaOptions();
        ReadObject(root, options, string.Empty);
        return options;
    }

    /// <summary>Turns a configuration key path (<c>a:b:0:c</c>) into the printed form (<c>a.b[0].c</c>).</summary>
    public static string DisplayPath(string configPath)
    {
        var result = string.Empty;
        foreach (var segment in configPath.Split(':'))
        {
            result = Join(result, segment);
        }

        return result;
    }

    /// <summary>Appends a key to a printed path: <c>[n]</c> for array indexes, <c>.key</c> otherwise.</summary>
    public static string Join(string path, string key)
        => key.Length > 0 && key.All(char.IsAsciiDigit) && path.Length > 0 ? $"{path}[{key}]"
            : path.Length == 0 ? key : $"{path}.{key}";

    /// <summary>A property name as the JSON key users write.</summary>
    public static string CamelCase(string name) => char.ToLowerInvariant(name[0]) + name[1..];

    private void ReadObject(IConfiguration section, object target, string path)
    {
        var properties = target.GetType()
            .GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

        foreach (var child in section.GetChildren())
        {
            var childPath = Join(path, child.Key);
            if (!properties.TryGetValue(child.Key, out var property))
            {
                _errors.Add(childPath, "unknown key" + Suggest.DidYouMean(child.Key, properties.Keys.Select(CamelCase)));
                continue;
            }

            if (TryReadValue(child, property.PropertyType, childPath, out var value))
            {
                property.SetValue(target, value);
            }
        }
    }

    private bool TryReadValue(IConfigurationSection section, Type type, string path, out object? value)
    {
        value = null;
        var hasChildren = section.GetChildren().Any();
        var underlying = Nullable.GetUnderlyingType(type) ?? type;

        if (OptionTypes.Of(type) is { } family)
        {
            return TryReadPolymorphic(section, family, hasChildren, path, out value);
        }

        if (ScalarDescription(underlying) is { } expected)
        {
            if (hasChildren)
            {
                _errors.Add(path, $"expected {expected}, got an object or array");
                return false;
            }

            if (section.Value is null || (section.Value.Length == 0 && underlying != typeof(string)))
            {
                if (underlying == type && type.IsValueType)
                {
                    _errors.Add(path, $"expected {expected}, got {(section.Value is null ? "null" : "an empty value")}");
                    return false;
                }

                return true;
            }

            if (TryConvert(section.Value, underlying, out value))
            {
                return true;
            }

            _errors.Add(path, $"expected {expected}, got '{Secrets.Show(section.Path, section.Value)}'");
            return false;
        }

        if (underlying.IsGenericType && underlying.GetGenericTypeDefinition() == typeof(List<>))
        {
            return TryReadList(section, underlying, hasChildren, path, out value);
        }

        if (underlying.IsGenericType && underlying.GetGenericTypeDefinition() == typeof(Dictionary<,>))
        {
            var dictionary = new Dictionary<string, string>(StringComparer.Ordinal);
            value = dictionary;
            if (!hasChildren)
            {
                return RequireEmpty(section, "an object of names to strings", path);
            }

            foreach (var entry in section.GetChildren())
            {
                if (entry.GetChildren().Any())
                {
                    _errors.Add(Join(path, entry.Key), "expected a string, got an object or array");
                    continue;
                }

                dictionary[entry.Key] = entry.Value ?? string.Empty;
            }

            return true;
        }

        // A nested options class.
        if (!hasChildren && !RequireEmpty(section, "an object", path))
        {
            return false;
        }

        value = Activator.CreateInstance(underlying)!;
        ReadObject(section, value, path);
        return true;
    }

    private bool TryReadPolymorphic(IConfigurationSection section, OptionTypes.Family family, bool hasChildren, string path, out object? value)
    {
        value = null;
        if (!hasChildren)
        {
            if (!string.IsNullOrEmpty(section.Value))
            {
                _errors.Add(path, $"expected a {family.Noun} object with a 'type', got '{Secrets.Show(section.Path, section.Value)}'");
                return false;
            }

            return true; // null or {}: reported as missing by the validator.
        }

        var typePath = Join(path, "type");
        var typeValue = section["type"];
        if (string.IsNullOrWhiteSpace(typeValue))
        {
            _errors.Add(typePath, $"missing required value (expected one of: {family.Expected})");
            return false;
        }

        if (family.Find(typeValue) is not { } match)
        {
            _errors.Add(typePath, $"unknown {family.Noun} type '{typeValue}' (expected one of: {family.Expected})");
            return false;
        }

        value = Activator.CreateInstance(match.Value)!;
        ReadObject(section, value, path);
        value.GetType().GetProperty("Type")!.SetValue(value, match.Key);
        return true;
    }

    private bool TryReadList(IConfigurationSection section, Type listType, bool hasChildren, string path, out object? value)
    {
        var elementType = listType.GetGenericArguments()[0];
        var list = (System.Collections.IList)Activator.CreateInstance(listType)!;
        value = list;
        if (!hasChildren)
        {
            // A single scalar where a list of scalars is expected (KAWA_PIPELINE__SOURCE__SERVERS=nats://…) is a list of one.
            if (!string.IsNullOrEmpty(section.Value) && ScalarDescription(elementType) is not null)
            {
                if (TryReadValue(section, elementType, path, out var single))
                {
                    list.Add(single);
                    return true;
                }

                return false;
            }

            return RequireEmpty(section, "an array", path);
        }

        var children = section.GetChildren().ToList();
        if (children.Exists(c => !int.TryParse(c.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            _errors.Add(path, "expected an array, got an object");
            return false;
        }

        foreach (var child in children.OrderBy(c => int.Parse(c.Key, CultureInfo.InvariantCulture)))
        {
            if (TryReadValue(child, elementType, Join(path, child.Key), out var element))
            {
                list.Add(element);
            }
            else
            {
                list.Add(null); // Reported; keeping the slot keeps later elements' paths right.
            }
        }

        return true;
    }

    private bool RequireEmpty(IConfigurationSection section, string expected, string path)
    {
        if (string.IsNullOrEmpty(section.Value))
        {
            return true;
        }

        _errors.Add(path, $"expected {expected}, got '{Secrets.Show(section.Path, section.Value)}'");
        return false;
    }

    private static string? ScalarDescription(Type type) =>
        type == typeof(string) ? "a string"
        : type == typeof(int) || type == typeof(long) ? "an integer"
        : type == typeof(ulong) ? "a non-negative integer"
        : type == typeof(double) ? "a number"
        : type == typeof(bool) ? "true or false"
        : type == typeof(TimeSpan) ? "a duration (hh:mm:ss, or a number with ms, s, m, h or d)"
        : type == typeof(DateTimeOffset) ? "an ISO 8601 date and time with offset"
        : null;

    /// <summary>Converts a configuration string to <paramref name="type"/> (invariant culture).</summary>
    internal static bool TryConvert(string text, Type type, out object? value)
    {
        var inv = CultureInfo.InvariantCulture;
        value = null;
        var s = text.Trim();
        if (type == typeof(string))
        {
            value = text;
            return true;
        }

        if (type == typeof(int) && int.TryParse(s, NumberStyles.AllowLeadingSign, inv, out var i))
        {
            value = i;
        }
        else if (type == typeof(long) && long.TryParse(s, NumberStyles.AllowLeadingSign, inv, out var l))
        {
            value = l;
        }
        else if (type == typeof(ulong) && ulong.TryParse(s, NumberStyles.None, inv, out var u))
        {
            value = u;
        }
        else if (type == typeof(double) && double.TryParse(s, NumberStyles.Float, inv, out var d))
        {
            value = d;
        }
        else if (type == typeof(bool) && bool.TryParse(s, out var b))
        {
            value = b;
        }
        else if (type == typeof(TimeSpan) && TryParseDuration(s, out var t))
        {
            value = t;
        }
        else if (type == typeof(DateTimeOffset) && DateTimeOffset.TryParse(s, inv, DateTimeStyles.AssumeUniversal, out var dto))
        {
            value = dto;
        }

        return value is not null;
    }

    /// <summary>Parses <c>hh:mm:ss[.fff]</c>, <c>d.hh:mm:ss</c> or a number with a unit: <c>500ms</c>, <c>30s</c>, <c>5m</c>, <c>1h</c>, <c>1d</c>.</summary>
    internal static bool TryParseDuration(string text, out TimeSpan value)
    {
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParseExact(text, "c", CultureInfo.InvariantCulture, out value);
        }

        (string Suffix, double Ms)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];
        foreach (var (suffix, ms) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text.AsSpan(0, text.Length - suffix.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var n)
                && !(suffix == "s" && text.EndsWith("ms", StringComparison.OrdinalIgnoreCase))
                && double.IsFinite(n))
            {
                value = TimeSpan.FromMilliseconds(n * ms);
                return true;
            }
        }

        value = default;
        return false;
    }
}
