using System.Reflection;

namespace Kawa.Dataflow.Tests.Packaging;

/// <summary>Raw TPL Dataflow blocks are an implementation detail: no public or protected member of a shipped assembly mentions one.</summary>
public sealed class PublicApiTests
{
    private const string DataflowNamespace = "System.Threading.Tasks.Dataflow";

    private static Assembly[] ShippedAssemblies()
        => Directory.GetFiles(AppContext.BaseDirectory, "Kawa.Dataflow*.dll")
            .Where(path => !Path.GetFileName(path).Contains(".Tests", StringComparison.Ordinal))
            .Select(path => Assembly.Load(AssemblyName.GetAssemblyName(path)))
            .ToArray();

    [Test]
    public void ExportedApi_EveryKawaDataflowAssembly_NoTplDataflowTypeAnywhere()
    {
        var assemblies = ShippedAssemblies();
        var leaks = new List<string>();
        foreach (var type in assemblies.SelectMany(a => a.GetExportedTypes()))
        {
            Check(type.BaseType, $"{type} base type", leaks);
            foreach (var implemented in type.GetInterfaces())
            {
                Check(implemented, $"{type} implements", leaks);
            }

            foreach (var argument in type.IsGenericTypeDefinition ? type.GetGenericArguments().SelectMany(a => a.GetGenericParameterConstraints()) : [])
            {
                Check(argument, $"{type} generic constraint", leaks);
            }

            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var member in type.GetMembers(all))
            {
                if (!IsVisible(member))
                {
                    continue;
                }

                var where = $"{type}.{member.Name}";
                switch (member)
                {
                    case FieldInfo field:
                        Check(field.FieldType, where, leaks);
                        break;
                    case PropertyInfo property:
                        Check(property.PropertyType, where, leaks);
                        foreach (var index in property.GetIndexParameters())
                        {
                            Check(index.ParameterType, where, leaks);
                        }

                        break;
                    case EventInfo @event:
                        Check(@event.EventHandlerType, where, leaks);
                        break;
                    case MethodBase method:
                        if (method is MethodInfo withReturn)
                        {
                            Check(withReturn.ReturnType, where, leaks);
                        }

                        foreach (var parameter in method.GetParameters())
                        {
                            Check(parameter.ParameterType, $"{where}({parameter.Name})", leaks);
                        }

                        break;
                }
            }
        }

        Assert.That(assemblies.Select(a => a.GetName().Name), Is.SupersetOf(new[] { "Kawa.Dataflow", "Kawa.Dataflow.Nats", "Kawa.Dataflow.Parquet" }), "the check must cover every library");
        Assert.That(leaks, Is.Empty);
    }

    [Test]
    public void Check_TypeMentioningADataflowBlock_IsCaught()
    {
        // The check itself must see through generic arguments, arrays and by-ref parameters.
        var leaks = new List<string>();

        Check(typeof(Task<System.Threading.Tasks.Dataflow.ITargetBlock<int>[]>).MakeByRefType(), "probe", leaks);

        Assert.That(leaks, Has.Count.EqualTo(1));
    }

    private static bool IsVisible(MemberInfo member) => member switch
    {
        FieldInfo f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly,
        MethodBase m => m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly,
        PropertyInfo p => p.GetAccessors(nonPublic: true).Any(a => a.IsPublic || a.IsFamily || a.IsFamilyOrAssembly),
        EventInfo e => e.AddMethod is { } add && (add.IsPublic || add.IsFamily || add.IsFamilyOrAssembly),
        _ => false, // nested types are exported types of their own
    };

    private static void Check(Type? type, string where, List<string> leaks)
    {
        if (type is null || type.IsGenericParameter)
        {
            return;
        }

        if (type.HasElementType)
        {
            Check(type.GetElementType(), where, leaks);
            return;
        }

        if (type.Namespace == DataflowNamespace)
        {
            leaks.Add($"{where}: {type}");
            return;
        }

        if (type.IsGenericType)
        {
            foreach (var argument in type.GetGenericArguments())
            {
                Check(argument, where, leaks);
            }
        }
    }
}
