using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json.Serialization;

namespace Kawa.Dataflow.Parquet.Schema;

/// <summary>Maps a .NET type's public properties to Parquet fields (see docs/parquet.md for the table).</summary>
internal static class ClrSchemaFactory
{
    internal const int DefaultDecimalPrecision = 38;
    internal const int DefaultDecimalScale = 18;

    private static readonly ConcurrentDictionary<(Type, ParquetTimestampUnit), ParquetSchema> Cache = new();

    private static readonly Dictionary<Type, ParquetValueType> Scalars = new()
    {
        [typeof(bool)] = ParquetValueType.Boolean,
        [typeof(sbyte)] = ParquetValueType.SByte,
        [typeof(short)] = ParquetValueType.Int16,
        [typeof(int)] = ParquetValueType.Int32,
        [typeof(long)] = ParquetValueType.Int64,
        [typeof(byte)] = ParquetValueType.Byte,
        [typeof(ushort)] = ParquetValueType.UInt16,
        [typeof(uint)] = ParquetValueType.UInt32,
        [typeof(ulong)] = ParquetValueType.UInt64,
        [typeof(float)] = ParquetValueType.Float,
        [typeof(double)] = ParquetValueType.Double,
        [typeof(decimal)] = ParquetValueType.Decimal,
        [typeof(string)] = ParquetValueType.String,
        [typeof(byte[])] = ParquetValueType.Binary,
        [typeof(Guid)] = ParquetValueType.Guid,
        [typeof(DateTime)] = ParquetValueType.Timestamp,
        [typeof(DateTimeOffset)] = ParquetValueType.Timestamp,
        [typeof(DateOnly)] = ParquetValueType.Date,
        [typeof(TimeOnly)] = ParquetValueType.Time,
        [typeof(TimeSpan)] = ParquetValueType.Duration,
    };

    public static ParquetSchema Build(Type type, ParquetTimestampUnit unit) =>
        Cache.GetOrAdd((type, unit), static key =>
        {
            var context = new NullabilityInfoContext();
            var fields = BuildGroupFields(key.Item1, key.Item2, context, key.Item1.Name, [key.Item1]);
            if (fields.Count == 0)
            {
                throw new NotSupportedException($"Type '{key.Item1.FullName}' has no public readable properties to write as Parquet columns.");
            }

            return new ParquetSchema(fields, key.Item1);
        });

    /// <summary>The CLR types a value field can be declared with (for the dynamic builder's checks).</summary>
    internal static bool TryGetValueType(Type t, out ParquetValueType valueType) => Scalars.TryGetValue(t, out valueType);

    private static List<ParquetField> BuildGroupFields(Type type, ParquetTimestampUnit unit, NullabilityInfoContext context, string path, HashSet<Type> visiting)
    {
        var fields = new List<ParquetField>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.GetMethod is null || !property.GetMethod.IsPublic
                || property.IsDefined(typeof(ParquetIgnoreAttribute), inherit: true))
            {
                continue;
            }

            // Records generate an EqualityContract property; it is not data.
            if (property.Name == "EqualityContract" && property.PropertyType == typeof(Type))
            {
                continue;
            }

            string name = property.GetCustomAttribute<ParquetColumnAttribute>()?.Name
                ?? property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name
                ?? property.Name;
            if (string.IsNullOrEmpty(name))
            {
                throw new NotSupportedException($"Property '{path}.{property.Name}' has an empty column name.");
            }

            if (!names.Add(name))
            {
                throw new NotSupportedException($"Type '{type.FullName}' maps two properties to the column name '{name}'; column names must be unique.");
            }

            var nullability = context.Create(property);
            fields.Add(BuildField(name, property.PropertyType, nullability, property, unit, context, $"{path}.{property.Name}", visiting));
        }

        return fields;
    }

    private static ParquetField BuildField(string name, Type type, NullabilityInfo? nullability, PropertyInfo? property, ParquetTimestampUnit unit,
        NullabilityInfoContext context, string path, HashSet<Type> visiting)
    {
        bool nullable;
        var underlying = Nullable.GetUnderlyingType(type);
        if (underlying is not null)
        {
            nullable = true;
            type = underlying;
        }
        else
        {
            // Reference types are OPTIONAL unless annotated non-nullable (nullable context enabled).
            nullable = !type.IsValueType && nullability?.ReadState != NullabilityState.NotNull;
        }

        if (type.IsEnum)
        {
            return new ParquetField(name, ParquetFieldKind.Value, nullable, ParquetValueType.String, [])
            {
                ClrType = type, EnumType = type, Property = property, DisplayPath = path,
            };
        }

        if (Scalars.TryGetValue(type, out var vt))
        {
            int precision = 0, scale = 0;
            if (vt == ParquetValueType.Decimal)
            {
                var attr = property?.GetCustomAttribute<ParquetDecimalAttribute>();
                precision = attr?.Precision ?? DefaultDecimalPrecision;
                scale = attr?.Scale ?? DefaultDecimalScale;
                ValidateDecimal(precision, scale, path);
            }

            return new ParquetField(name, ParquetFieldKind.Value, nullable, vt, [])
            {
                ClrType = type, Property = property, DisplayPath = path, DecimalPrecision = precision, DecimalScale = scale,
                TimestampUnit = unit,
            };
        }

        if (TryGetDictionaryTypes(type, out var keyType, out var valueType))
        {
            var keyField = BuildField("key", keyType, nullability?.GenericTypeArguments.ElementAtOrDefault(0), null, unit, context, path + ".key", visiting);
            if (keyField.Kind != ParquetFieldKind.Value)
            {
                throw Unsupported(path, type, "map keys must be scalar values");
            }

            keyField = new ParquetField("key", ParquetFieldKind.Value, false, keyField.ValueType, [])
            {
                ClrType = keyField.ClrType, EnumType = keyField.EnumType, DisplayPath = keyField.DisplayPath,
                DecimalPrecision = keyField.DecimalPrecision, DecimalScale = keyField.DecimalScale, TimestampUnit = unit,
            };
            var valueNullability = nullability?.GenericTypeArguments.ElementAtOrDefault(1);
            var valueField = BuildField("value", valueType, valueNullability, null, unit, context, path + ".value", visiting);
            return new ParquetField(name, ParquetFieldKind.Map, nullable, default, [keyField, valueField])
            {
                ClrType = type, Property = property, DisplayPath = path,
            };
        }

        if (TryGetElementType(type, out var elementType))
        {
            var elementNullability = type.IsArray ? nullability?.ElementType : nullability?.GenericTypeArguments.ElementAtOrDefault(0);
            var element = BuildField("element", elementType, elementNullability, null, unit, context, path + "[]", visiting);
            return new ParquetField(name, ParquetFieldKind.List, nullable, default, [element])
            {
                ClrType = type, Property = property, DisplayPath = path,
            };
        }

        if (type.IsClass && !type.IsAbstract && type != typeof(object) && type.Namespace?.StartsWith("System", StringComparison.Ordinal) != true
            && !typeof(System.Collections.IEnumerable).IsAssignableFrom(type) && !typeof(Delegate).IsAssignableFrom(type))
        {
            if (!visiting.Add(type))
            {
                throw Unsupported(path, type, "the type refers to itself (recursive types have no fixed Parquet schema)");
            }

            var children = BuildGroupFields(type, unit, context, path, visiting);
            visiting.Remove(type);
            if (children.Count == 0)
            {
                throw Unsupported(path, type, "the nested type has no public readable properties");
            }

            return new ParquetField(name, ParquetFieldKind.Group, nullable, default, children)
            {
                ClrType = type, Property = property, DisplayPath = path,
            };
        }

        throw Unsupported(path, type, "there is no Parquet mapping for this type");
    }

    internal static void ValidateDecimal(int precision, int scale, string path)
    {
        if (precision is < 1 or > 38 || scale < 0 || scale > precision || scale > 28)
        {
            throw new NotSupportedException($"Property '{path}' declares DECIMAL({precision}, {scale}); precision must be 1..38 and scale 0..min(precision, 28).");
        }
    }

    private static NotSupportedException Unsupported(string path, Type type, string why) =>
        new($"Property '{path}' has type '{TypeName(type)}', which cannot be written to Parquet: {why}. Mark it [ParquetIgnore] to leave it out.");

    internal static string TypeName(Type t)
    {
        if (!t.IsGenericType)
        {
            return t.FullName ?? t.Name;
        }

        string baseName = t.GetGenericTypeDefinition().FullName ?? t.Name;
        int tick = baseName.IndexOf('`', StringComparison.Ordinal);
        return $"{(tick >= 0 ? baseName[..tick] : baseName)}<{string.Join(", ", t.GetGenericArguments().Select(TypeName))}>";
    }

    internal static bool TryGetDictionaryTypes(Type type, out Type keyType, out Type valueType)
    {
        if (type.IsGenericType)
        {
            var def = type.GetGenericTypeDefinition();
            if (def == typeof(Dictionary<,>) || def == typeof(IDictionary<,>) || def == typeof(IReadOnlyDictionary<,>))
            {
                var args = type.GetGenericArguments();
                keyType = args[0];
                valueType = args[1];
                return true;
            }
        }

        keyType = valueType = typeof(void);
        return false;
    }

    internal static bool TryGetElementType(Type type, out Type elementType)
    {
        if (type.IsArray && type.GetArrayRank() == 1 && type != typeof(byte[]))
        {
            elementType = type.GetElementType()!;
            return true;
        }

        if (type.IsGenericType)
        {
            var def = type.GetGenericTypeDefinition();
            if (def == typeof(List<>) || def == typeof(IList<>) || def == typeof(IReadOnlyList<>) || def == typeof(ICollection<>)
                || def == typeof(IReadOnlyCollection<>) || def == typeof(IEnumerable<>))
            {
                elementType = type.GetGenericArguments()[0];
                return true;
            }
        }

        elementType = typeof(void);
        return false;
    }
}
