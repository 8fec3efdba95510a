using System.Collections;
using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json.Serialization;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Reading;

/// <summary>Binds assembled dynamic values to .NET types (properties matched by column name, same naming rules as writing).</summary>
internal static class RowBinder
{
    private static readonly ConcurrentDictionary<Type, (Func<object> Create, Dictionary<string, PropertyInfo> Props)> Types = new();

    public static T BindRow<T>(IReadOnlyList<ParquetField> fields, object?[] row)
    {
        var (create, props) = Describe(typeof(T));
        var target = create();
        for (int i = 0; i < fields.Count; i++)
        {
            if (props.TryGetValue(fields[i].Name, out var p))
            {
                Set(p, target, row[i], fields[i].DisplayPath);
            }
        }

        return (T)target;
    }

    private static void Set(PropertyInfo p, object target, object? value, string path)
    {
        if (p.SetMethod is null)
        {
            throw new InvalidOperationException($"Property '{p.DeclaringType?.Name}.{p.Name}' has no setter (or init accessor); column '{path}' cannot be bound to it.");
        }

        p.SetValue(target, Convert(value, p.PropertyType, path));
    }

    public static object? Convert(object? value, Type target, string path)
    {
        if (value is null)
        {
            if (target.IsValueType && Nullable.GetUnderlyingType(target) is null)
            {
                throw new InvalidCastException($"Column '{path}' is null but the target type {target.Name} is not nullable.");
            }

            return null;
        }

        var underlying = Nullable.GetUnderlyingType(target);
        if (underlying is not null)
        {
            target = underlying;
        }

        if (target.IsInstanceOfType(value) && value is not object?[] && value is not IDictionary)
        {
            return value;
        }

        if (target.IsEnum && value is string s)
        {
            return Enum.Parse(target, s);
        }

        if (target == typeof(DateTimeOffset) && value is DateTime dt)
        {
            return new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc));
        }

        if (target == typeof(TimeSpan) && value is long micros)
        {
            return TimeSpan.FromTicks(checked(micros * 10));
        }

        if (value is object?[] items && ClrSchemaFactory.TryGetElementType(target, out var elementType))
        {
            var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(elementType), items.Length)!;
            foreach (var item in items) list.Add(Convert(item, elementType, path + "[]"));
            if (target.IsArray)
            {
                var array = Array.CreateInstance(elementType, list.Count);
                list.CopyTo(array, 0);
                return array;
            }

            return list;
        }

        if (value is Dictionary<object, object?> map && ClrSchemaFactory.TryGetDictionaryTypes(target, out var keyType, out var valueType))
        {
            var dict = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(keyType, valueType))!;
            foreach (var (k, v) in map) dict[Convert(k, keyType, path + ".key")!] = Convert(v, valueType, path + ".value");
            return dict;
        }

        if (value is Dictionary<string, object?> group)
        {
            var (create, props) = Describe(target);
            var obj = create();
            foreach (var (name, v) in group)
            {
                if (props.TryGetValue(name, out var p)) Set(p, obj, v, path + "." + name);
            }

            return obj;
        }

        if (value is IConvertible && typeof(IConvertible).IsAssignableFrom(target))
        {
            return System.Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
        }

        throw new InvalidCastException($"Column '{path}' holds {value.GetType().Name} values, which cannot be bound to {target.Name}.");
    }

    private static (Func<object> Create, Dictionary<string, PropertyInfo> Props) Describe(Type type) =>
        Types.GetOrAdd(type, static t =>
        {
            var props = new Dictionary<string, PropertyInfo>(StringComparer.Ordinal);
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (p.GetIndexParameters().Length > 0 || p.IsDefined(typeof(ParquetIgnoreAttribute), true))
                {
                    continue;
                }

                string name = p.GetCustomAttribute<ParquetColumnAttribute>()?.Name ?? p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? p.Name;
                props[name] = p;
            }

            // Records with a primary constructor have no parameterless one; their properties have init accessors.
            Func<object> create = t.GetConstructor(Type.EmptyTypes) is not null
                ? () => Activator.CreateInstance(t)!
                : () => RuntimeHelpers.GetUninitializedObject(t);
            return (create, props);
        });
}
